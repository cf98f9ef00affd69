//! Lookup vindexes (`lookup`, `lookup_hash`, `consistent_lookup` and their `_unique`
//! variants). shardgate accepts them so that existing Vitess vschemas load unchanged, checks
//! their required params (`table`, `from`, `to`), and never routes by them: mapping a value
//! would need a query against the lookup table, so [`Vindex::map`] returns
//! [`VindexError::NeedsLookup`] and the planner treats them as absent. They cannot be a
//! table's primary vindex (validation rejects that).

use std::collections::BTreeMap;

use super::vindex::{CreateVindexError, Vindex, VindexError, VindexValue};

/// A declared lookup vindex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub vindex_type: &'static str,
    /// The lookup table, `ks.table` or `table`.
    pub table: String,
    /// The lookup table's "from" columns.
    pub from: Vec<String>,
    /// The lookup table's keyspace-id column.
    pub to: String,
}

impl Lookup {
    pub fn new(
        vindex_type: &'static str,
        params: &BTreeMap<String, String>,
    ) -> Result<Lookup, CreateVindexError> {
        let get = |p: &str| -> Result<String, CreateVindexError> {
            match params.get(p).map(|s| s.trim()) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(CreateVindexError::BadParam {
                    param: p.to_string(),
                    message: format!("missing param {p:?}, required by vindex type {vindex_type}"),
                }),
            }
        };
        let table = get("table")?;
        let from: Vec<String> = get("from")?
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .collect();
        if from.iter().any(|s| s.is_empty()) {
            return Err(CreateVindexError::BadParam {
                param: "from".into(),
                message: "empty column name".into(),
            });
        }
        let to = get("to")?;
        Ok(Lookup {
            vindex_type,
            table,
            from,
            to,
        })
    }
}

impl Vindex for Lookup {
    fn type_name(&self) -> &'static str {
        self.vindex_type
    }
    fn is_unique(&self) -> bool {
        self.vindex_type.ends_with("_unique")
    }
    fn cost(&self) -> u32 {
        if self.is_unique() {
            10
        } else {
            20
        }
    }
    fn map(&self, _value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Err(VindexError::NeedsLookup {
            vindex_type: self.vindex_type,
        })
    }
    fn needs_lookup(&self) -> bool {
        true
    }
    fn column_count(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let mut p = BTreeMap::new();
        assert!(matches!(
            Lookup::new("lookup", &p),
            Err(CreateVindexError::BadParam { ref param, .. }) if param == "table"
        ));
        p.insert("table".to_string(), "lookup.name_idx".to_string());
        p.insert("from".to_string(), "Name, id".to_string());
        assert!(matches!(
            Lookup::new("lookup", &p),
            Err(CreateVindexError::BadParam { ref param, .. }) if param == "to"
        ));
        p.insert("to".to_string(), "keyspace_id".to_string());
        let l = Lookup::new("consistent_lookup_unique", &p).unwrap();
        assert_eq!(l.from, ["name", "id"]);
        assert!(l.is_unique() && l.needs_lookup());
        assert_eq!(l.cost(), 10);
        assert_eq!(
            l.map(&VindexValue::Int(1)),
            Err(VindexError::NeedsLookup {
                vindex_type: "consistent_lookup_unique"
            })
        );
        assert!(!Lookup::new("lookup_hash", &p).unwrap().is_unique());
    }
}
