//! Integration tests: the real server on an ephemeral loopback port, a temp data
//! dir, and picture hosts on loopback. One binary, so the crate links once.

mod helpers;
mod image_host;
mod pictures;
mod services;

mod cli;
mod concurrency;
mod envelope;
mod login;
mod openapi;
mod overload;
mod profile;
mod requests;
mod scale;
mod shutdown;
mod ssrf;
mod tokens;
mod update_head_img;
