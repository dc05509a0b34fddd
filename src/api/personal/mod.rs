//! 个人模块 (personal): one file per action.

pub(super) mod get_profile;
pub(super) mod update_head_img;
