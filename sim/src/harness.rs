//! What a simulated world offers the scenario runner, whichever world it is.
//!
//! The L0 stepper ([`crate::world::World`]) and the turmoil world ([`crate::l1::L1World`])
//! implement [`Harness`], so the same scenario files, faults and checks run in either.

use crate::client::Answer;
use crate::fault::ShardFault;
use shardgate_core::wire::Value;

/// The keyspaces and shards of a world (scenario `topology` lines, or a sweep's draw).
#[derive(Clone, PartialEq, Eq)]
pub struct TopologySpec {
    pub keyspaces: Vec<KeyspaceSpec>,
    /// The VSchema (Vitess JSON) for all keyspaces; without one the gateway passes statements
    /// through to each keyspace's first shard.
    pub vschema: Option<VSchemaSource>,
}

/// A VSchema file: its name as a scenario wrote it and its contents.
#[derive(Clone, PartialEq, Eq)]
pub struct VSchemaSource {
    pub name: String,
    pub json: String,
}

/// One keyspace; the first of a topology is the default keyspace.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyspaceSpec {
    pub name: String,
    /// Shard names: `0` for an unsharded keyspace, key ranges (`-80`, `80-`) otherwise.
    pub shards: Vec<String>,
}

impl KeyspaceSpec {
    pub fn is_sharded(&self) -> bool {
        !(self.shards.len() == 1 && self.shards[0] == "0")
    }
}

impl TopologySpec {
    /// The embedded default: keyspace `commerce` on one unsharded shard.
    pub fn embedded_default() -> TopologySpec {
        TopologySpec {
            keyspaces: vec![KeyspaceSpec {
                name: "commerce".into(),
                shards: vec!["0".into()],
            }],
            vschema: None,
        }
    }

    /// `commerce shards=-80,80-; lookup shards=0; vschema=commerce.json` (transcript headers).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .keyspaces
            .iter()
            .map(|k| format!("{} shards={}", k.name, k.shards.join(",")))
            .collect();
        if let Some(v) = &self.vschema {
            parts.push(format!("vschema={}", v.name));
        }
        parts.join("; ")
    }

    /// Every shard as (keyspace, shard name).
    pub fn shards(&self) -> Vec<(String, String)> {
        self.keyspaces
            .iter()
            .flat_map(|k| k.shards.iter().map(move |s| (k.name.clone(), s.clone())))
            .collect()
    }
}

/// How a scripted client connects.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub user: String,
    pub password: String,
    pub database: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            user: "root".into(),
            password: String::new(),
            database: None,
        }
    }
}

/// The far end of a partition (the near end is always the gateway).
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    Shard(String),
    Client(String),
}

/// The gateway's side of one client connection.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionState {
    Open,
    /// Closed by the gateway; `reason` is what it logged (None: it logged nothing).
    ClosedByGateway {
        reason: Option<String>,
    },
    /// The client hung up.
    ClosedByClient,
}

/// A simulated world the scenario runner drives. Clients are named (`a`, `b`, ...); shards
/// are named as in the topology (`0`, `-80`, or `keyspace/shard` when a bare name is
/// ambiguous). Methods that send return at once after the world has run until nothing moves;
/// [`Harness::next_answer`] runs further (advancing simulated time to the next timer) until an
/// answer arrives.
pub trait Harness {
    /// Appends a line to the transcript (scenario steps are echoed this way).
    fn note(&mut self, line: &str);
    fn transcript(&self) -> String;

    fn connect(&mut self, client: &str, opts: &ConnectOptions) -> Result<(), String>;
    fn query(&mut self, client: &str, sql: &str) -> Result<(), String>;
    fn prepare(&mut self, client: &str, sql: &str) -> Result<(), String>;
    fn execute(&mut self, client: &str, stmt_id: u32, params: &[Value]) -> Result<(), String>;
    /// The client closes its socket, whatever is in flight.
    fn disconnect(&mut self, client: &str) -> Result<(), String>;
    /// The client's next answer, running the world until one arrives.
    fn next_answer(&mut self, client: &str) -> Result<Answer, String>;
    fn session_state(&self, client: &str) -> Result<SessionState, String>;

    /// Runs until nothing moves (held links and future timers stay pending).
    fn settle(&mut self) -> Result<(), String>;
    /// Moves simulated time forward, firing timers on the way.
    fn advance(&mut self, ms: u64) -> Result<(), String>;

    fn arm_fault(&mut self, shard: &str, fault: ShardFault) -> Result<(), String>;
    /// Every connection of the shard closes now (from the shard's side).
    fn drop_connections(&mut self, shard: &str) -> Result<(), String>;
    /// The shard host crashes: its connections drop and new ones are refused until restarted.
    /// Committed data survives (the engine's storage is durable); open transactions roll back.
    fn crash(&mut self, shard: &str) -> Result<(), String>;
    fn restart(&mut self, shard: &str) -> Result<(), String>;
    /// Nothing crosses between the gateway and `target` either way, and new connections to a
    /// partitioned shard are refused at once, until [`Harness::heal`].
    fn partition(&mut self, target: &Endpoint) -> Result<(), String>;
    /// Ends every partition; held bytes flow again.
    fn heal(&mut self) -> Result<(), String>;
    /// Everything a shard sends is held until [`Harness::resume`].
    fn stall(&mut self, shard: &str) -> Result<(), String>;
    /// Releases a stall and any held answers of that shard.
    fn resume(&mut self, shard: &str) -> Result<(), String>;
    /// Deliver bytes in seeded random pieces on every link.
    fn set_split_packets(&mut self, on: bool);
    /// Arms (or, with `None`, disarms) the gateway's panic failpoint.
    fn set_panic_marker(&mut self, marker: Option<&str>);
    /// Runs one statement directly on a shard's engine, bypassing the gateway (end-of-run checks
    /// read what the shards really hold): result rows, none for other statements.
    fn shard_query(
        &mut self,
        shard: &str,
        database: &str,
        sql: &str,
    ) -> Result<Vec<Vec<Value>>, String>;
    /// Messages between the gateway and `target` take `ms` each way (L1 only: L0 delivers
    /// in steps, not in time).
    fn set_latency(&mut self, target: &Endpoint, ms: u64) -> Result<(), String> {
        let _ = (target, ms);
        Err("latency needs the turmoil world (`world l1`)".into())
    }

    /// Ends the run: every client leaves, the world settles, and the end-of-run invariants are
    /// checked (no leaked backend connection, no protocol violation toward a client). Returns
    /// the failed invariants.
    fn finish(&mut self) -> Vec<String>;
}
