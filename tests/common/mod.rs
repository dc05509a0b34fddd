//! Helpers shared by the test binaries: the in-process server (`helpers`),
//! picture hosts on loopback, pictures made to order, and the backend services
//! (PostgreSQL + S3 for the second pass).

pub mod db;
pub mod helpers;
pub mod image_host;
pub mod pictures;
pub mod receiver;
pub mod services;
