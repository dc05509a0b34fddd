//! 系统功能 (tools).

mod get_token_id;

pub use get_token_id::get_token_id;
