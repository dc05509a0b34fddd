//! 登录模块 (login): the parts that make sense for accounts held by this server.

pub(super) mod check_online;
pub(super) mod device_list;
pub(super) mod set_callback;
