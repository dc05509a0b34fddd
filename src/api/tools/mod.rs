//! 系统功能 (tools).

pub(crate) mod get_token_id;

pub use get_token_id::get_token_id;
