//! End-to-end tests of the `rogatory` binary, run as separate processes on real files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod authorization;
mod backup;
mod bundle;
mod cases;
mod cli;
mod daemon;
mod evidence;
mod hostile;
mod hosts;
mod inbox;
mod keys;
mod network;
mod people;
mod people_race;
mod setup;
mod stats;
mod store;
mod tables;
mod verifier_memory;
mod witness;
