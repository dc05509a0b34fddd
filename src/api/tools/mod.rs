//! 系统功能 (tools).

pub(super) mod get_token_id;
