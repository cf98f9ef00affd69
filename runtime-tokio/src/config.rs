//! Turning command-line options (or a config file) into a gateway: topology, vschema, users,
//! embedded shards.

use crate::embedded::EmbeddedShards;
use serde::Deserialize;
use shardgate_core::gateway::{Gateway, Keyspace, Shard, ShardAddress, Topology};
use shardgate_core::server::ServerConfig;
use shardgate_core::vschema::{parse_vschema, VSchema, DEFAULT_VSCHEMA_JSON};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The version string announced to clients by default.
pub const DEFAULT_VERSION: &str = "8.0.40-shardgate";

/// What a gateway is built from (flags, or the `--config` JSON file with the same names).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Vitess VSchema JSON (`{"keyspaces": {...}}`) as text.
    #[serde(skip)]
    pub vschema_json: Option<String>,
    /// Path of the VSchema file (config file form).
    #[serde(default)]
    pub vschema: Option<String>,
    /// `KEYSPACE/SHARD` -> `mysql://…` or `embedded`.
    #[serde(default)]
    pub shards: BTreeMap<String, String>,
    /// `KEYSPACE/SHARD` -> replica URLs (`--shard KEYSPACE/SHARD@replica=URL`, repeatable).
    #[serde(default)]
    pub replicas: BTreeMap<String, Vec<String>>,
    /// Address to listen on (config file form).
    #[serde(default)]
    pub listen: Option<String>,
    /// Users: name -> password.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// The embedded default's schema, created in each in-process shard at start.
const COMMERCE_SCHEMA: &[&str] = &[
    "CREATE TABLE customer (customer_id BIGINT NOT NULL, email VARCHAR(128), PRIMARY KEY (customer_id))",
    "CREATE TABLE corder (order_id BIGINT NOT NULL, customer_id BIGINT, sku VARCHAR(128), price BIGINT, PRIMARY KEY (order_id))",
    "CREATE TABLE product (sku VARCHAR(128) NOT NULL, description VARCHAR(128), price BIGINT, PRIMARY KEY (sku))",
];
const LOOKUP_SCHEMA: &[&str] = &[
    "CREATE TABLE customer_seq (id INT NOT NULL, next_id BIGINT, cache BIGINT, PRIMARY KEY (id))",
    "INSERT INTO customer_seq (id, next_id, cache) VALUES (0, 1, 100)",
];

/// The embedded default: keyspace `commerce` sharded `-80`,`80-` (customer and corder by
/// `hash` on customer_id, reference table product) and unsharded `lookup` holding the
/// customer_id sequence; every shard an in-process engine.
pub fn embedded_default() -> Result<(Arc<Gateway>, Arc<EmbeddedShards>), String> {
    let mut spec = GatewaySpec {
        vschema_json: Some(DEFAULT_VSCHEMA_JSON.to_string()),
        ..Default::default()
    };
    for (ks, shard) in [("commerce", "-80"), ("commerce", "80-"), ("lookup", "0")] {
        spec.shards
            .insert(format!("{ks}/{shard}"), "embedded".to_string());
    }
    let (gw, shards) = build(&spec)?;
    for (name, schema) in [
        ("commerce/-80", COMMERCE_SCHEMA),
        ("commerce/80-", COMMERCE_SCHEMA),
        ("lookup/0", LOOKUP_SCHEMA),
    ] {
        let ks = name.split('/').next().unwrap_or_default();
        shards
            .run_sql(name, ks, schema)
            .map_err(|e| format!("embedded shard {name}: {e}"))?;
    }
    Ok((gw, shards))
}

/// One unsharded keyspace passing through to one MySQL server (`--backend URL`).
/// `server_version`: what to announce; pass-through mode announces the backend's own version,
/// so clients pick the dialect details (collations, `5.5.5-` MariaDB prefix) that server
/// understands.
pub fn passthrough(
    url: &str,
    server_version: Option<String>,
) -> Result<(Arc<Gateway>, Arc<EmbeddedShards>), String> {
    let address = ShardAddress::parse(url, "", "")?;
    let keyspace = match address.database() {
        "" => "default".to_string(),
        db => db.to_string(),
    };
    let topology = Topology::single(&keyspace, address);
    let mut server = ServerConfig::default();
    if let Some(v) = server_version {
        server.server_version = v;
    }
    Ok((
        Gateway::new(server, topology),
        Arc::new(EmbeddedShards::new(DEFAULT_VERSION)),
    ))
}

/// Parses `KEYSPACE/SHARD=URL`.
pub fn parse_shard_flag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--shard takes KEYSPACE/SHARD=URL, got {s}"))?;
    if !k.contains('/') {
        return Err(format!("--shard takes KEYSPACE/SHARD=URL, got {s}"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Adds one `--shard` flag to `spec`: `KEYSPACE/SHARD=URL` is the shard's primary,
/// `KEYSPACE/SHARD@replica=URL` one of its replicas (repeatable).
pub fn add_shard_flag(spec: &mut GatewaySpec, s: &str) -> Result<(), String> {
    let (k, v) = parse_shard_flag(s)?;
    match k.split_once('@') {
        None => {
            spec.shards.insert(k, v);
        }
        Some((name, "replica")) => spec.replicas.entry(name.to_string()).or_default().push(v),
        Some((_, other)) => {
            return Err(format!(
                "--shard {s}: unknown tablet type {other:?} (KEYSPACE/SHARD=URL for the primary, KEYSPACE/SHARD@replica=URL for a replica)"
            ))
        }
    }
    Ok(())
}

/// Reads a `--config` file.
pub fn read_config(path: &str) -> Result<GatewaySpec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut spec: GatewaySpec = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    if let Some(vs) = &spec.vschema {
        spec.vschema_json =
            Some(std::fs::read_to_string(vs).map_err(|e| format!("cannot read {vs}: {e}"))?);
    }
    Ok(spec)
}

/// Builds the gateway and its embedded shards from a spec.
pub fn build(spec: &GatewaySpec) -> Result<(Arc<Gateway>, Arc<EmbeddedShards>), String> {
    let vschema: VSchema = match &spec.vschema_json {
        Some(json) => parse_vschema(json).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
            format!("invalid vschema:\n{}", lines.join("\n"))
        })?,
        None => VSchema::default(),
    };
    if spec.shards.is_empty() {
        return Err("no shards: give --shard KEYSPACE/SHARD=URL (or --backend URL)".into());
    }
    let mut keyspaces: BTreeMap<String, Keyspace> = BTreeMap::new();
    let mut embedded = EmbeddedShards::new(&format!("{DEFAULT_VERSION}-engine"));
    for (name, url) in &spec.shards {
        let (ks, shard) = name
            .split_once('/')
            .ok_or_else(|| format!("shard name must be KEYSPACE/SHARD: {name}"))?;
        let address = ShardAddress::parse(url, name, ks)?;
        if let ShardAddress::Embedded { .. } = address {
            embedded.add(name, &[ks]).map_err(|e| e.to_string())?;
        }
        let sharded = vschema.keyspaces.get(ks).is_some_and(|k| k.sharded);
        let replicas = spec
            .replicas
            .get(name)
            .map(|urls| {
                urls.iter()
                    .map(|u| match ShardAddress::parse(u, name, ks)? {
                        ShardAddress::Embedded { .. } => Err(format!(
                            "replica of {name}: embedded replicas are not supported"
                        )),
                        a => Ok(a),
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .transpose()?
            .unwrap_or_default();
        keyspaces
            .entry(ks.to_string())
            .or_insert_with(|| Keyspace {
                name: ks.to_string(),
                sharded,
                shards: Vec::new(),
            })
            .shards
            .push(Shard {
                name: shard.to_string(),
                address,
                replicas,
            });
    }
    if let Some(name) = spec.replicas.keys().find(|n| !spec.shards.contains_key(*n)) {
        return Err(format!(
            "--shard {name}@replica=URL: shard {name} has no primary (add --shard {name}=URL)"
        ));
    }
    let default_keyspace = vschema
        .keyspaces
        .iter()
        .find(|(_, k)| k.sharded)
        .map(|(n, _)| n.clone())
        .or_else(|| keyspaces.keys().next().cloned())
        .unwrap_or_default();
    let topology = Topology {
        keyspaces,
        default_keyspace,
    };
    let mut server = ServerConfig::default();
    for (u, p) in &spec.users {
        server.users.set_password(u, p);
    }
    let gw = Gateway::with_vschema(server, topology, vschema)?;
    Ok((gw, Arc::new(embedded)))
}
