//! 消息模块 (message): one file per action.

pub(super) mod post_text;
