//! # rogatory-node
//!
//! The agency node and the `rogatory` command: the daemon (libp2p, the store worker, the local
//! API), the command line (offline commands, and online ones that are clients of the API), and
//! the embedded store. All protocol logic lives in `rogatory-proto`; this crate adds I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod cases;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod daemon;
pub mod engine;
pub mod evidence;
pub mod export;
pub mod files;
pub mod keydir;
pub mod net;
pub mod people;
pub mod secret;
pub mod stats;
pub mod store;
pub mod trust;
