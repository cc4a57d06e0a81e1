//! Integration tests: the real server on port 0 with a fresh SQLite database per test, over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod bulk;
mod clients;
mod conditional;
mod cursors;
mod custom;
mod discovery;
mod errors;
mod groups;
mod helpers;
mod history;
mod hostile;
mod robustness;
mod sorting;
mod tail;
mod transparency;
mod users;
