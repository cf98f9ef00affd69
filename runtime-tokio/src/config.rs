//! Turning command-line options into a gateway: topology, users, embedded shards.

use crate::embedded::EmbeddedShards;
use shardgate_core::gateway::{Gateway, ShardAddress, Topology};
use shardgate_core::server::ServerConfig;
use std::sync::Arc;

/// The version string announced to clients by default.
pub const DEFAULT_VERSION: &str = "8.0.40-shardgate";

/// The embedded default: keyspace `commerce` on one in-process engine shard.
pub fn embedded_default() -> Result<(Arc<Gateway>, Arc<EmbeddedShards>), String> {
    let mut shards = EmbeddedShards::new(&format!("{DEFAULT_VERSION}-engine"));
    shards
        .add("commerce/0", &["commerce"])
        .map_err(|e| e.to_string())?;
    let topology = Topology::single(
        "commerce",
        ShardAddress::Embedded {
            name: "commerce/0".into(),
            database: "commerce".into(),
        },
    );
    Ok((
        Gateway::new(ServerConfig::default(), topology),
        Arc::new(shards),
    ))
}

/// One unsharded keyspace passing through to one MySQL server (`--backend URL`).
pub fn passthrough(url: &str) -> Result<(Arc<Gateway>, Arc<EmbeddedShards>), String> {
    let address = ShardAddress::parse(url, "", "")?;
    let keyspace = match address.database() {
        "" => "default".to_string(),
        db => db.to_string(),
    };
    let topology = Topology::single(&keyspace, address);
    Ok((
        Gateway::new(ServerConfig::default(), topology),
        Arc::new(EmbeddedShards::new(DEFAULT_VERSION)),
    ))
}
