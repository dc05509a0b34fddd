//! 登录模块 (login): the login lifecycle, with the WeChat phone emulated.

pub(super) mod check_login;
pub(super) mod check_online;
pub(super) mod device_list;
pub(super) mod dialog_login;
pub(super) mod get_login_qr_code;
pub(super) mod logout;
pub(super) mod reconnection;
pub(super) mod set_callback;
