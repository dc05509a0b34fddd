//! Tests against the real `gewe` binary run as a child process: memory under
//! hostile pictures (peak RSS of the process) and crash consistency (SIGKILL
//! mid-stream, restart, check). Picture hosts run in this process on loopback.
//!
//! The backend is chosen like the API suite's: `GEWE_TEST_BACKEND=pg-s3` (see
//! `tests/api/services.rs`, run by `scripts/test-pg-s3`) gives each data dir its
//! own PostgreSQL database and S3 bucket; otherwise SQLite and the blob folder.

#[path = "../api/image_host.rs"]
#[allow(dead_code)]
mod image_host;
#[path = "../api/pictures.rs"]
#[allow(dead_code)]
mod pictures;
#[path = "../api/services.rs"]
#[allow(dead_code)]
mod services;
mod support;

/// What `services` expects of the API suite's helpers.
mod helpers {
    pub use super::support::http_client_builder;
}

mod crash;
mod hostile;
