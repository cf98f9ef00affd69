//! shardgate's runtime: the tokio driver over the sans-IO core. The only crate that owns
//! sockets and reads a clock; generic over [`net::Net`] so the simulator runs the same driver
//! on turmoil's network.

pub mod clock;
pub mod config;
pub mod driver;
pub mod embedded;
pub mod health;
pub mod http;
pub mod net;
pub mod oneshot;
pub mod pool;
pub mod querylog;
pub mod tls;
pub mod wakeups;
pub mod workers;
