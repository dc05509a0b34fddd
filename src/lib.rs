//! gewe-server: a self-hosted server that speaks the GeWe WeChat-bot HTTP API.
//!
//! Data flows one way: request → `auth` → `domain` → `fetch`/`imaging` → `storage`
//! → `repo`. Handlers in `api` touch neither SQL nor pixels.

pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod console;
pub mod delivery;
pub mod domain;
pub mod fetch;
pub mod imaging;
pub mod operator;
pub mod repo;
pub mod startup;
pub mod storage;
pub mod telemetry;
