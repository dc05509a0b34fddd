//! 个人模块 (personal): one file per action.

pub(super) mod get_profile;
pub(super) mod get_qr_code;
pub(super) mod get_safety_info;
pub(super) mod privacy_settings;
pub(super) mod update_head_img;
pub(super) mod update_profile;
