//! Semantic validation of a decoded vschema and its resolution into [`VSchema`].
//!
//! Every problem is reported (not just the first), each with the JSON path of the offending
//! field, in a fixed order: keyspaces by name; within a keyspace its vindexes by name, then its
//! tables by name, each table's fields in the order type, column_vindexes, source,
//! auto_increment.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::json::{KeyspaceDef, TableDef, VSchemaDef};
use super::vindex::{create_vindex, CreateVindexError, Vindex};
use super::{
    AutoIncrement, ColumnVindex, KeyspaceSchema, TableKind, TableSchema, VSchema, VSchemaError,
};

/// Every problem in `def`; empty when it is valid.
pub fn validate(def: &VSchemaDef) -> Vec<VSchemaError> {
    match build(def) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// What the cross-keyspace checks need to know about every declared table.
struct Index<'a> {
    /// keyspace -> (sharded, lowercase table -> declared type)
    keyspaces: BTreeMap<&'a str, (bool, BTreeMap<String, &'a str>)>,
}

impl<'a> Index<'a> {
    fn new(def: &'a VSchemaDef) -> Self {
        let keyspaces = def
            .keyspaces
            .iter()
            .map(|(n, k)| {
                let tables = k
                    .tables
                    .iter()
                    .map(|(t, td)| (t.to_ascii_lowercase(), td.table_type.as_str()))
                    .collect();
                (n.as_str(), (k.sharded, tables))
            })
            .collect();
        Index { keyspaces }
    }
}

/// `ks.table`, `` `ks`.`table` `` or `table` -> (keyspace, lowercase table).
fn split_qualified(s: &str) -> Option<(Option<String>, String)> {
    fn unquote(p: &str) -> Option<&str> {
        let p = p.trim();
        let p = p
            .strip_prefix('`')
            .and_then(|x| x.strip_suffix('`'))
            .unwrap_or(p);
        (!p.is_empty() && !p.contains('`')).then_some(p)
    }
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        [t] => Some((None, unquote(t)?.to_ascii_lowercase())),
        [k, t] => Some((
            Some(unquote(k)?.to_string()),
            unquote(t)?.to_ascii_lowercase(),
        )),
        _ => None,
    }
}

/// Validates `def` and resolves it. On failure, every problem found.
pub fn build(def: &VSchemaDef) -> Result<VSchema, Vec<VSchemaError>> {
    let index = Index::new(def);
    let mut errs = Vec::new();
    let mut out = VSchema::default();
    for (ks_name, ks) in &def.keyspaces {
        let resolved = build_keyspace(ks_name, ks, &index, &mut errs);
        out.keyspaces.insert(ks_name.clone(), resolved);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn build_keyspace(
    ks_name: &str,
    ks: &KeyspaceDef,
    index: &Index<'_>,
    errs: &mut Vec<VSchemaError>,
) -> KeyspaceSchema {
    let path = format!("keyspaces.{ks_name}");
    let mut vindexes: BTreeMap<String, Arc<dyn Vindex>> = BTreeMap::new();
    for (vname, vd) in &ks.vindexes {
        let vpath = format!("{path}.vindexes.{vname}");
        if vd.vindex_type.is_empty() {
            errs.push(VSchemaError::new(
                format!("{vpath}.type"),
                "missing vindex type",
            ));
            continue;
        }
        match create_vindex(&vd.vindex_type, vname, &vd.params) {
            Ok(v) => {
                vindexes.insert(vname.clone(), v);
            }
            Err(e @ CreateVindexError::UnknownType(_)) => {
                errs.push(VSchemaError::new(format!("{vpath}.type"), e.to_string()))
            }
            Err(CreateVindexError::BadParam { param, message }) => errs.push(VSchemaError::new(
                format!("{vpath}.params.{param}"),
                message,
            )),
        }
    }

    let mut tables = BTreeMap::new();
    let mut seen_lower: BTreeMap<String, &str> = BTreeMap::new();
    for (tname, td) in &ks.tables {
        let tpath = format!("{path}.tables.{tname}");
        let lower = tname.to_ascii_lowercase();
        if let Some(prev) = seen_lower.insert(lower.clone(), tname) {
            errs.push(VSchemaError::new(
                &tpath,
                format!("duplicate table: {prev:?} and {tname:?} differ only in case"),
            ));
            continue;
        }
        if let Some(t) = build_table(ks_name, ks, &lower, td, &tpath, &vindexes, index, errs) {
            tables.insert(lower, t);
        }
    }
    KeyspaceSchema {
        name: ks_name.to_string(),
        sharded: ks.sharded,
        vindexes,
        tables,
    }
}

#[allow(clippy::too_many_arguments)]
fn build_table(
    ks_name: &str,
    ks: &KeyspaceDef,
    lower: &str,
    td: &TableDef,
    tpath: &str,
    vindexes: &BTreeMap<String, Arc<dyn Vindex>>,
    index: &Index<'_>,
    errs: &mut Vec<VSchemaError>,
) -> Option<TableSchema> {
    let start_errs = errs.len();
    // type
    let mut kind = match td.table_type.as_str() {
        "" => TableKind::Normal,
        "reference" => TableKind::Reference { source: None },
        "sequence" => {
            if ks.sharded {
                errs.push(VSchemaError::new(
                    format!("{tpath}.type"),
                    format!(
                        "sequence table in sharded keyspace {ks_name}; sequence tables must be in an unsharded keyspace"
                    ),
                ));
            }
            TableKind::Sequence
        }
        other => {
            errs.push(VSchemaError::new(
                format!("{tpath}.type"),
                format!(
                    "unknown table type {other:?} (expected \"\", \"reference\" or \"sequence\")"
                ),
            ));
            TableKind::Normal
        }
    };

    // column_vindexes
    let cvpath = format!("{tpath}.column_vindexes");
    let mut column_vindexes = Vec::new();
    if !td.column_vindexes.is_empty() && !ks.sharded {
        errs.push(VSchemaError::new(
            &cvpath,
            format!("column_vindexes in unsharded keyspace {ks_name}; only tables of a sharded keyspace have vindexes"),
        ));
    } else if !td.column_vindexes.is_empty() && kind != TableKind::Normal {
        errs.push(VSchemaError::new(
            &cvpath,
            format!("a {} table cannot have column_vindexes", td.table_type),
        ));
    } else {
        for (i, cv) in td.column_vindexes.iter().enumerate() {
            let ipath = format!("{cvpath}[{i}]");
            let columns: Vec<String> = match (cv.column.is_empty(), cv.columns.is_empty()) {
                (false, true) => vec![cv.column.to_ascii_lowercase()],
                (true, false) => cv.columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
                (false, false) => {
                    errs.push(VSchemaError::new(
                        &ipath,
                        "both column and columns are set; use one",
                    ));
                    continue;
                }
                (true, true) => {
                    errs.push(VSchemaError::new(&ipath, "missing column (or columns)"));
                    continue;
                }
            };
            if columns.iter().any(|c| c.is_empty()) {
                errs.push(VSchemaError::new(
                    format!("{ipath}.columns"),
                    "empty column name",
                ));
                continue;
            }
            let npath = format!("{ipath}.name");
            if cv.name.is_empty() {
                errs.push(VSchemaError::new(&npath, "missing vindex name"));
                continue;
            }
            let Some(vindex) = vindexes.get(&cv.name) else {
                if !ks.vindexes.contains_key(&cv.name) {
                    errs.push(VSchemaError::new(
                        &npath,
                        format!("vindex {:?} is not defined in keyspace {ks_name}", cv.name),
                    ));
                }
                // else: defined but broken; already reported at its definition.
                continue;
            };
            if let Some(n) = vindex.column_count() {
                if columns.len() != n {
                    errs.push(VSchemaError::new(
                        format!("{ipath}.columns"),
                        format!(
                            "vindex {:?} (type {}) takes {n} column, got {}",
                            cv.name,
                            vindex.type_name(),
                            columns.len()
                        ),
                    ));
                    continue;
                }
            }
            if i == 0 {
                if !vindex.is_unique() {
                    errs.push(VSchemaError::new(
                        &npath,
                        format!(
                            "primary vindex {:?} (type {}) is not unique",
                            cv.name,
                            vindex.type_name()
                        ),
                    ));
                } else if vindex.needs_lookup() {
                    errs.push(VSchemaError::new(
                        &npath,
                        format!(
                            "primary vindex {:?} (type {}) is a lookup vindex; shardgate needs a functional primary vindex",
                            cv.name,
                            vindex.type_name()
                        ),
                    ));
                }
            }
            column_vindexes.push(ColumnVindex {
                columns,
                vindex_name: cv.name.clone(),
                vindex: vindex.clone(),
            });
        }
    }
    if ks.sharded && kind == TableKind::Normal && td.column_vindexes.is_empty() {
        errs.push(VSchemaError::new(
            &cvpath,
            format!(
                "table {lower} in sharded keyspace {ks_name} has no primary vindex (column_vindexes is empty)"
            ),
        ));
    }

    // source
    if !td.source.is_empty() {
        let spath = format!("{tpath}.source");
        if !matches!(kind, TableKind::Reference { .. }) {
            errs.push(VSchemaError::new(
                &spath,
                "source is only allowed on reference tables",
            ));
        } else {
            match split_qualified(&td.source) {
                Some((Some(sks), st)) => match index.keyspaces.get(sks.as_str()) {
                    None => errs.push(VSchemaError::new(
                        &spath,
                        format!("source {:?}: keyspace {sks} does not exist", td.source),
                    )),
                    Some((sharded, ts)) => match ts.get(&st) {
                        None => errs.push(VSchemaError::new(
                            &spath,
                            format!(
                                "source {:?}: table {st} does not exist in keyspace {sks}",
                                td.source
                            ),
                        )),
                        Some(_) if sks == ks_name => errs.push(VSchemaError::new(
                            &spath,
                            format!(
                                "source {:?}: must be in another keyspace than the reference table",
                                td.source
                            ),
                        )),
                        Some(_) if *sharded => errs.push(VSchemaError::new(
                            &spath,
                            format!(
                                "source {:?}: keyspace {sks} is sharded; a source must be in an unsharded keyspace",
                                td.source
                            ),
                        )),
                        Some(t) if !t.is_empty() => errs.push(VSchemaError::new(
                            &spath,
                            format!("source {:?}: is a {t} table, not a normal table", td.source),
                        )),
                        Some(_) => kind = TableKind::Reference {
                            source: Some((sks, st)),
                        },
                    },
                },
                _ => errs.push(VSchemaError::new(
                    &spath,
                    format!("malformed source {:?}: expected \"keyspace.table\"", td.source),
                )),
            }
        }
    }

    // auto_increment
    let mut auto_increment = None;
    if let Some(ai) = &td.auto_increment {
        let apath = format!("{tpath}.auto_increment");
        if ai.column.is_empty() {
            errs.push(VSchemaError::new(
                format!("{apath}.column"),
                "missing column",
            ));
        }
        let qpath = format!("{apath}.sequence");
        let seq = if ai.sequence.is_empty() {
            errs.push(VSchemaError::new(&qpath, "missing sequence"));
            None
        } else {
            resolve_sequence(&ai.sequence, &qpath, index, errs)
        };
        if let (false, Some(sequence)) = (ai.column.is_empty(), seq) {
            auto_increment = Some(AutoIncrement {
                column: ai.column.to_ascii_lowercase(),
                sequence,
            });
        }
    }

    (errs.len() == start_errs).then(|| TableSchema {
        name: lower.to_string(),
        kind,
        column_vindexes,
        auto_increment,
    })
}

fn resolve_sequence(
    seq: &str,
    path: &str,
    index: &Index<'_>,
    errs: &mut Vec<VSchemaError>,
) -> Option<(String, String)> {
    let Some((ks, table)) = split_qualified(seq) else {
        errs.push(VSchemaError::new(
            path,
            format!("malformed sequence {seq:?}: expected \"keyspace.table\" or \"table\""),
        ));
        return None;
    };
    let (ks, ttype) = match ks {
        Some(ks) => {
            let Some((_, ts)) = index.keyspaces.get(ks.as_str()) else {
                errs.push(VSchemaError::new(
                    path,
                    format!("sequence {seq:?}: keyspace {ks} does not exist"),
                ));
                return None;
            };
            let Some(t) = ts.get(&table) else {
                errs.push(VSchemaError::new(
                    path,
                    format!("sequence table {ks}.{table} does not exist"),
                ));
                return None;
            };
            (ks, *t)
        }
        None => {
            let found: Vec<(&str, &str)> = index
                .keyspaces
                .iter()
                .filter_map(|(k, (_, ts))| ts.get(&table).map(|t| (*k, *t)))
                .collect();
            match found.as_slice() {
                [] => {
                    errs.push(VSchemaError::new(
                        path,
                        format!("sequence table {table} does not exist in any keyspace"),
                    ));
                    return None;
                }
                [(k, t)] => (k.to_string(), *t),
                many => {
                    let names: Vec<&str> = many.iter().map(|(k, _)| *k).collect();
                    errs.push(VSchemaError::new(
                        path,
                        format!(
                            "sequence table {table} is ambiguous (in keyspaces {}); write keyspace.table",
                            names.join(", ")
                        ),
                    ));
                    return None;
                }
            }
        }
    };
    if ttype != "sequence" {
        errs.push(VSchemaError::new(
            path,
            format!(
                "table {ks}.{table} is not a sequence table (its type is {ttype:?}, expected \"sequence\")"
            ),
        ));
        return None;
    }
    Some((ks, table))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn qualified_names() {
        assert_eq!(
            split_qualified("lookup.Customer_Seq"),
            Some((Some("lookup".into()), "customer_seq".into()))
        );
        assert_eq!(
            split_qualified("`lookup`.`s`"),
            Some((Some("lookup".into()), "s".into()))
        );
        assert_eq!(split_qualified("s"), Some((None, "s".into())));
        assert_eq!(split_qualified("a.b.c"), None);
        assert_eq!(split_qualified(".b"), None);
        assert_eq!(split_qualified("a."), None);
        assert_eq!(split_qualified("``"), None);
    }
}
