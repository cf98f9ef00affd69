//! shardgate-core: the sans-IO heart of shardgate.
//!
//! This crate does no I/O, reads no clock, spawns no thread and draws no unseeded randomness.
//! Bytes come in through `handle_*` methods, bytes and events go out through `poll_*` methods,
//! and the current time is always passed in by the caller. The same code therefore runs under
//! the production tokio driver and, byte for byte reproducibly, inside the simulator.

pub mod backend;
pub mod error;
pub mod exec;
pub mod gateway;
pub mod plan;
pub mod pool;
pub mod response;
pub mod server;
pub mod session;
pub mod sql;
pub mod users;
pub mod vschema;
pub mod wire;

pub use error::SqlError;
