//! Integration tests: the real server on an ephemeral loopback port, a temp data
//! dir, and picture hosts on loopback. One binary, so the crate links once.

mod helpers;
mod image_host;
mod pictures;

mod cli;
mod concurrency;
mod envelope;
mod overload;
mod profile;
mod requests;
mod ssrf;
mod tokens;
mod update_head_img;
