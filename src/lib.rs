//! Spool: real-time autoregressive text-to-video.
//!
//! The crate is a library plus the `spool` binary (`main.rs`), so tests and benchmarks drive the same
//! code the app runs. See `ARCHITECTURE.md` for the map of modules and the rules between them.

pub mod beside;
pub mod cli;
pub mod engine;
pub mod export;
pub mod model;
pub mod project;
#[cfg(feature = "gui")]
pub mod render;
pub mod staging;
pub mod store;
pub mod timeline;
#[cfg(feature = "gui")]
pub mod ui;
