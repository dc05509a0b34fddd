//! 个人模块 (personal): one file per action.

pub(crate) mod get_profile;
pub(crate) mod update_head_img;

pub use get_profile::get_profile;
pub use update_head_img::update_head_img;
