//! Tests against the real `gewe` binary run as a child process: memory under
//! hostile pictures (peak RSS of the process) and crash consistency (SIGKILL
//! mid-stream, restart, check). Picture hosts run in this process on loopback.

#[path = "../api/image_host.rs"]
#[allow(dead_code)]
mod image_host;
#[path = "../api/pictures.rs"]
#[allow(dead_code)]
mod pictures;
mod support;

mod crash;
mod hostile;
