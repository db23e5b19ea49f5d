//! # rogatory-node
//!
//! The agency node and the `rogatory` command. For now it holds the offline commands: key
//! generation, agency cards, sealing, opening and inspecting envelopes, and validating
//! requests. All protocol logic lives in `rogatory-proto`; this crate adds files and the CLI.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod files;
pub mod inbox;
pub mod keydir;
pub mod net;
pub mod secret;
pub mod store;
