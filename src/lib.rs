//! gewe-server: a self-hosted server that speaks the GeWe WeChat-bot HTTP API.
//!
//! Data flows one way: request → `auth` → `domain` → `fetch`/`imaging` → `storage`
//! → `repo`. Handlers in `api` touch neither SQL nor pixels.

// Newer clippy flags figment's 208-byte error (settings load, once at startup)
// and clap's command enum (parsed once): third-party shapes, not worth boxing.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fetch;
pub mod imaging;
pub mod repo;
pub mod startup;
pub mod storage;
pub mod telemetry;
