//! 登录模块 (login): the parts that make sense for accounts held by this server.

pub(crate) mod check_online;
pub(crate) mod device_list;

pub use check_online::check_online;
pub use device_list::device_list;
