//! Integration tests: the real server on an ephemeral loopback port, a temp data
//! dir, and picture hosts on loopback. One binary, so the crate links once.

// The helpers every test binary shares live in one place, `tests/common/`; each
// binary uses part of them.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
use common::{helpers, image_host, pictures, receiver, services};

mod backup;
mod callbacks;
mod cli;
mod concurrency;
mod console;
mod coverage;
mod envelope;
mod login;
mod login_flow;
mod login_store;
mod logs;
mod openapi;
mod operator;
mod outbox_contract;
mod overload;
mod personal;
mod pg_tls;
mod profile;
mod requests;
mod scale;
mod shutdown;
mod ssrf;
mod store_contract;
mod tokens;
mod update_head_img;
