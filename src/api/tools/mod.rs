//! 系统功能 (tools).

pub(super) mod get_token_id;
pub(in crate::api) mod set_callback;
