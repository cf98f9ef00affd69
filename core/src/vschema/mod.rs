//! VSchema: Vitess's description of how tables are spread over keyspaces and shards.
//!
//! * [`json`]: the file format (`{"keyspaces": {"NAME": <ApplyVSchema keyspace>}}`), decoded
//!   into [`json::VSchemaDef`] with every malformed field reported by path.
//! * [`validate`] / [`build`]: every semantic problem with its JSON path (unknown vindex type,
//!   undefined vindex, missing or non-unique primary vindex, bad reference source, bad
//!   sequence, ...), and the resolved [`VSchema`] the planner uses.
//! * [`keyrange`]: shard names as key ranges and the [`ShardMap`] binary search.
//! * [`vindex`]: the [`Vindex`] trait and [`create_vindex`]; [`functional`] holds the
//!   Vitess-compatible `hash`, `xxhash`, `numeric`, `binary`, `binary_md5`, `reverse_bits`.
//! * [`sequence`]: the id-block cache behind `auto_increment` columns.
//!
//! Names: keyspace and vindex names are case-sensitive (as in Vitess); table and column names
//! are matched case-insensitively and stored lowercase.

pub mod functional;
pub mod json;
pub mod keyrange;
pub mod lookup;
pub mod sequence;
pub mod validate;
pub mod vindex;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::SqlError;

pub use keyrange::{
    check_full_coverage, parse_shard_spec, KeyRange, KeyRangeError, Shard, ShardMap,
};
pub use sequence::{NeedBlock, SequenceCache, SequenceError};
pub use validate::{build, validate};
pub use vindex::{create_vindex, CreateVindexError, Vindex, VindexError, VindexValue};

/// One problem in a vschema file: where (a path such as
/// `keyspaces.commerce.tables.corder.column_vindexes[0].name`; `""` for the whole file) and
/// what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VSchemaError {
    pub path: String,
    pub message: String,
}

impl VSchemaError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        VSchemaError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for VSchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for VSchemaError {}

/// Parses, validates and resolves a vschema file. On failure, every problem found.
pub fn parse_vschema(json: &str) -> Result<VSchema, Vec<VSchemaError>> {
    let (def, mut errs) = json::decode(json);
    match build(&def) {
        Ok(vs) if errs.is_empty() => Ok(vs),
        Ok(_) => Err(errs),
        Err(more) => {
            errs.extend(more);
            Err(errs)
        }
    }
}

/// Every problem in a vschema file (empty = valid); what `shardgate vschema validate` prints.
pub fn validate_json(json: &str) -> Vec<VSchemaError> {
    match parse_vschema(json) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// The embedded default vschema (`scenarios/vschema/commerce.json`): keyspace `commerce`
/// sharded by `hash` (`customer`, `corder`, reference `product`) and unsharded `lookup`
/// holding the `customer_seq` sequence.
pub const DEFAULT_VSCHEMA_JSON: &str = include_str!("../../../scenarios/vschema/commerce.json");

/// The shards of the embedded default, as (keyspace, shard name).
pub const DEFAULT_SHARDS: &[(&str, &str)] =
    &[("commerce", "-80"), ("commerce", "80-"), ("lookup", "0")];

/// The embedded default, resolved. Cannot fail: the file is compiled in and a unit test
/// parses it.
pub fn default_vschema() -> VSchema {
    parse_vschema(DEFAULT_VSCHEMA_JSON).unwrap_or_default()
}

/// The resolved vschema the planner works with.
#[derive(Clone, Debug, Default)]
pub struct VSchema {
    pub keyspaces: BTreeMap<String, KeyspaceSchema>,
}

/// One keyspace.
#[derive(Clone, Debug, Default)]
pub struct KeyspaceSchema {
    /// The keyspace's name (the key it is stored under in [`VSchema::keyspaces`]).
    pub name: String,
    pub sharded: bool,
    /// By vindex name (case-sensitive).
    pub vindexes: BTreeMap<String, Arc<dyn Vindex>>,
    /// By lowercase table name.
    pub tables: BTreeMap<String, TableSchema>,
}

/// What kind of table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// Sharded by its primary vindex (in a sharded keyspace) or simply living in an unsharded
    /// keyspace.
    Normal,
    /// A copy on every shard. Reads go to any one shard; writes go to `source`
    /// (keyspace, table) when declared, else they are rejected (1173).
    Reference { source: Option<(String, String)> },
    /// A Vitess sequence table (columns `id`, `next_id`, `cache`) in an unsharded keyspace.
    Sequence,
}

/// One entry of a table's `column_vindexes`; the first is the primary vindex.
#[derive(Clone, Debug)]
pub struct ColumnVindex {
    /// Lowercase column names (one for every functional vindex).
    pub columns: Vec<String>,
    pub vindex_name: String,
    pub vindex: Arc<dyn Vindex>,
}

/// `auto_increment`: `column` is filled from the sequence table (keyspace, table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoIncrement {
    pub column: String,
    pub sequence: (String, String),
}

/// One table.
#[derive(Clone, Debug)]
pub struct TableSchema {
    /// Lowercase.
    pub name: String,
    pub kind: TableKind,
    pub column_vindexes: Vec<ColumnVindex>,
    pub auto_increment: Option<AutoIncrement>,
}

impl TableSchema {
    /// The primary (first) vindex; `Some` for every normal table of a sharded keyspace.
    pub fn primary_vindex(&self) -> Option<&ColumnVindex> {
        self.column_vindexes.first()
    }

    /// The column vindexes whose first column is `column` (case-insensitive), in order.
    pub fn vindexes_on(&self, column: &str) -> impl Iterator<Item = &ColumnVindex> {
        let column = column.to_ascii_lowercase();
        self.column_vindexes
            .iter()
            .filter(move |cv| cv.columns.first() == Some(&column))
    }

    pub fn is_reference(&self) -> bool {
        matches!(self.kind, TableKind::Reference { .. })
    }

    pub fn is_sequence(&self) -> bool {
        self.kind == TableKind::Sequence
    }
}

impl KeyspaceSchema {
    /// The table `name` (case-insensitive).
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(&name.to_ascii_lowercase())
    }
}

/// Why [`VSchema::find_table`] found nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableLookupError {
    UnknownKeyspace(String),
    /// `keyspace` is the keyspace searched, `None` when the name was unqualified. An unsharded
    /// keyspace may well hold tables its vschema does not list; the planner decides whether
    /// to pass such a table through.
    NoSuchTable {
        keyspace: Option<String>,
        table: String,
    },
    /// An unqualified name found in several keyspaces (sorted).
    Ambiguous {
        table: String,
        keyspaces: Vec<String>,
    },
}

impl fmt::Display for TableLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableLookupError::UnknownKeyspace(k) => write!(f, "Unknown database '{k}'"),
            TableLookupError::NoSuchTable {
                keyspace: Some(k),
                table,
            } => write!(f, "Table '{k}.{table}' doesn't exist"),
            TableLookupError::NoSuchTable {
                keyspace: None,
                table,
            } => write!(f, "table {table} not found"),
            TableLookupError::Ambiguous { table, keyspaces } => write!(
                f,
                "ambiguous table reference: {table} (in keyspaces {})",
                keyspaces.join(", ")
            ),
        }
    }
}

impl std::error::Error for TableLookupError {}

impl TableLookupError {
    /// The client-facing error: 1049 for an unknown keyspace, 1146 for an unknown table,
    /// 1105 for an ambiguous one.
    pub fn to_sql_error(&self) -> SqlError {
        match self {
            TableLookupError::UnknownKeyspace(_) => SqlError::new(
                crate::error::codes::ER_BAD_DB_ERROR,
                "42000",
                self.to_string(),
            ),
            TableLookupError::NoSuchTable {
                keyspace: Some(k),
                table,
            } => SqlError::no_such_table(&format!("{k}.{table}")),
            TableLookupError::NoSuchTable {
                keyspace: None,
                table,
            } => SqlError::no_such_table(table),
            TableLookupError::Ambiguous { .. } => SqlError::internal(self.to_string()),
        }
    }
}

impl VSchema {
    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceSchema> {
        self.keyspaces.get(name)
    }

    /// Finds a table. Qualified (`Some(keyspace)`): in that keyspace only. Unqualified: in
    /// whichever keyspace declares it, like Vitess's global routing; a name declared in
    /// several keyspaces is ambiguous.
    pub fn find_table(
        &self,
        keyspace: Option<&str>,
        table: &str,
    ) -> Result<(&KeyspaceSchema, &TableSchema), TableLookupError> {
        let lower = table.to_ascii_lowercase();
        if let Some(k) = keyspace {
            let ks = self
                .keyspaces
                .get(k)
                .ok_or_else(|| TableLookupError::UnknownKeyspace(k.to_string()))?;
            let t = ks
                .tables
                .get(&lower)
                .ok_or_else(|| TableLookupError::NoSuchTable {
                    keyspace: Some(k.to_string()),
                    table: table.to_string(),
                })?;
            return Ok((ks, t));
        }
        let mut found = self
            .keyspaces
            .iter()
            .filter_map(|(n, ks)| ks.tables.get(&lower).map(|t| (n, ks, t)));
        match (found.next(), found.next()) {
            (None, _) => Err(TableLookupError::NoSuchTable {
                keyspace: None,
                table: table.to_string(),
            }),
            (Some((_, ks, t)), None) => Ok((ks, t)),
            (Some((a, ..)), Some((b, ..))) => {
                let mut keyspaces = vec![a.clone(), b.clone()];
                keyspaces.extend(found.map(|(n, ..)| n.clone()));
                Err(TableLookupError::Ambiguous {
                    table: table.to_string(),
                    keyspaces,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
