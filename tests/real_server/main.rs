//! Tests against the real `gewe` binary run as a child process: memory under
//! hostile pictures (peak RSS of the process) and crash consistency (SIGKILL
//! mid-stream, restart, check). Picture hosts run in this process on loopback.
//!
//! The backend is chosen like the API suite's: `GEWE_TEST_BACKEND=pg-s3` (see
//! `tests/common/services.rs`, run by `scripts/test-pg-s3`) gives each data dir its
//! own PostgreSQL database and S3 bucket; otherwise SQLite and the blob folder.

// The helpers every test binary shares live in one place, `tests/common/`; this
// binary uses only part of them.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
use common::{helpers, image_host, pictures, services};

mod support;

mod connections;
mod crash;
mod gc;
mod hostile;
mod metrics;
mod outbox;
