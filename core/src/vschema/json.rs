//! The serde model of Vitess's VSchema JSON, and a decoder that reports every malformed field
//! with its path instead of stopping at the first one.
//!
//! The file format is `{"keyspaces": {"NAME": <keyspace vschema>}}` where a keyspace vschema is
//! what Vitess's `ApplyVSchema` takes (the same shape `GetSrvVSchema` prints). Unknown fields
//! are ignored, `null` means "absent", and the protojson camelCase spellings
//! (`columnVindexes`, `autoIncrement`) are accepted as well as the proto names.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::VSchemaError;

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VSchemaDef {
    #[serde(default)]
    pub keyspaces: BTreeMap<String, KeyspaceDef>,
}

/// One keyspace, as `ApplyVSchema` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyspaceDef {
    pub sharded: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vindexes: BTreeMap<String, VindexDef>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableDef>,
}

/// A vindex declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VindexDef {
    #[serde(rename = "type")]
    pub vindex_type: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

/// A table declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableDef {
    /// `""` (normal), `"reference"` or `"sequence"`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub table_type: String,
    #[serde(alias = "columnVindexes", skip_serializing_if = "Vec::is_empty")]
    pub column_vindexes: Vec<ColumnVindexDef>,
    #[serde(alias = "autoIncrement", skip_serializing_if = "Option::is_none")]
    pub auto_increment: Option<AutoIncrementDef>,
    /// For reference tables: `"keyspace.table"` of the table writes go to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// One entry of `column_vindexes`: `column` (one column) or `columns` (several), and the
/// vindex `name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnVindexDef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub column: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    pub name: String,
}

/// `auto_increment`: the column filled from `sequence` (`"ks.table"` or `"table"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoIncrementDef {
    pub column: String,
    pub sequence: String,
}

/// Decodes the file. Syntax errors are reported once at path `""`; shape errors (a field of
/// the wrong type) are all reported, each with its path, and the rest of the file still
/// decodes so validation can report the remaining problems.
pub fn decode(json: &str) -> (VSchemaDef, Vec<VSchemaError>) {
    let mut errs = Vec::new();
    let root: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            errs.push(VSchemaError::new("", format!("invalid JSON: {e}")));
            return (VSchemaDef::default(), errs);
        }
    };
    let mut def = VSchemaDef::default();
    let Some(root) = as_object(&root, "", &mut errs) else {
        return (def, errs);
    };
    let Some(kss) = root.get("keyspaces").filter(|v| !v.is_null()) else {
        errs.push(VSchemaError::new("keyspaces", "missing"));
        return (def, errs);
    };
    let Some(kss) = as_object(kss, "keyspaces", &mut errs) else {
        return (def, errs);
    };
    for (ks_name, ks) in sorted(kss) {
        let path = format!("keyspaces.{ks_name}");
        let Some(ks) = as_object(ks, &path, &mut errs) else {
            continue;
        };
        let mut k = KeyspaceDef {
            sharded: field(ks, &["sharded"], &path, &mut errs).unwrap_or_default(),
            ..KeyspaceDef::default()
        };
        if let Some(vs) = object_field(ks, "vindexes", &path, &mut errs) {
            for (vname, v) in sorted(vs) {
                let vpath = format!("{path}.vindexes.{vname}");
                let Some(v) = as_object(v, &vpath, &mut errs) else {
                    continue;
                };
                let vd = VindexDef {
                    vindex_type: field(v, &["type"], &vpath, &mut errs).unwrap_or_default(),
                    params: field(v, &["params"], &vpath, &mut errs).unwrap_or_default(),
                    owner: field(v, &["owner"], &vpath, &mut errs).unwrap_or_default(),
                };
                k.vindexes.insert(vname.clone(), vd);
            }
        }
        if let Some(ts) = object_field(ks, "tables", &path, &mut errs) {
            for (tname, t) in sorted(ts) {
                let tpath = format!("{path}.tables.{tname}");
                let Some(t) = as_object(t, &tpath, &mut errs) else {
                    continue;
                };
                let mut td = TableDef {
                    table_type: field(t, &["type"], &tpath, &mut errs).unwrap_or_default(),
                    source: field(t, &["source"], &tpath, &mut errs).unwrap_or_default(),
                    ..TableDef::default()
                };
                let cvs: Vec<Value> =
                    field(t, &["column_vindexes", "columnVindexes"], &tpath, &mut errs)
                        .unwrap_or_default();
                for (i, cv) in cvs.iter().enumerate() {
                    let cpath = format!("{tpath}.column_vindexes[{i}]");
                    let Some(cv) = as_object(cv, &cpath, &mut errs) else {
                        continue;
                    };
                    td.column_vindexes.push(ColumnVindexDef {
                        column: field(cv, &["column"], &cpath, &mut errs).unwrap_or_default(),
                        columns: field(cv, &["columns"], &cpath, &mut errs).unwrap_or_default(),
                        name: field(cv, &["name"], &cpath, &mut errs).unwrap_or_default(),
                    });
                }
                if let Some(ai) = t
                    .get("auto_increment")
                    .or_else(|| t.get("autoIncrement"))
                    .filter(|v| !v.is_null())
                {
                    let apath = format!("{tpath}.auto_increment");
                    if let Some(ai) = as_object(ai, &apath, &mut errs) {
                        td.auto_increment = Some(AutoIncrementDef {
                            column: field(ai, &["column"], &apath, &mut errs).unwrap_or_default(),
                            sequence: field(ai, &["sequence"], &apath, &mut errs)
                                .unwrap_or_default(),
                        });
                    }
                }
                k.tables.insert(tname.clone(), td);
            }
        }
        def.keyspaces.insert(ks_name.clone(), k);
    }
    (def, errs)
}

/// Entries in key order whatever serde_json's `preserve_order` feature says, so errors come
/// out in the same order in every build.
fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_object<'a>(
    v: &'a Value,
    path: &str,
    errs: &mut Vec<VSchemaError>,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            errs.push(VSchemaError::new(
                path,
                format!("expected an object, found {}", type_name(other)),
            ));
            None
        }
    }
}

fn object_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Vec<VSchemaError>,
) -> Option<&'a Map<String, Value>> {
    let v = obj.get(key).filter(|v| !v.is_null())?;
    as_object(v, &format!("{path}.{key}"), errs)
}

/// Decodes field `keys[0]` (or one of its aliases) of `obj`; absent or null -> `None`; a value
/// of the wrong shape -> an error at `path.keys[0]` and `None`.
fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    keys: &[&str],
    path: &str,
    errs: &mut Vec<VSchemaError>,
) -> Option<T> {
    let v = keys
        .iter()
        .find_map(|k| obj.get(*k))
        .filter(|v| !v.is_null())?;
    match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(VSchemaError::new(
                format!("{path}.{}", keys[0]),
                e.to_string(),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_ignores_unknown_fields() {
        let (def, errs) = decode(
            r#"{"keyspaces": {"ks": {"sharded": true, "require_explicit_routing": false,
                "vindexes": {"h": {"type": "hash", "params": {"a": "b"}, "owner": "t"}},
                "tables": {"t": {"columnVindexes": [{"column": "id", "name": "h"}],
                                 "autoIncrement": {"column": "id", "sequence": "s"},
                                 "columns": [{"name": "id", "type": "INT64"}]},
                           "r": {"type": "reference", "source": "u.r"}}}}}"#,
        );
        assert_eq!(errs, vec![]);
        let ks = &def.keyspaces["ks"];
        assert!(ks.sharded);
        assert_eq!(ks.vindexes["h"].vindex_type, "hash");
        assert_eq!(ks.vindexes["h"].params["a"], "b");
        assert_eq!(ks.vindexes["h"].owner, "t");
        assert_eq!(ks.tables["t"].column_vindexes[0].column, "id");
        assert_eq!(
            ks.tables["t"].auto_increment,
            Some(AutoIncrementDef {
                column: "id".into(),
                sequence: "s".into()
            })
        );
        assert_eq!(ks.tables["r"].source, "u.r");
        // The serde derive reads the same file.
        let direct: VSchemaDef = serde_json::from_str(
            r#"{"keyspaces": {"ks": {"sharded": true, "tables": {"t": {"columnVindexes": [{"column": "id", "name": "h"}]}}}}}"#,
        )
        .unwrap();
        assert_eq!(direct.keyspaces["ks"].tables["t"].column_vindexes.len(), 1);
        // And serializing round-trips.
        let text = serde_json::to_string(&def).unwrap();
        assert_eq!(decode(&text), (def, vec![]));
    }

    #[test]
    fn shape_errors_have_paths() {
        let (_, errs) = decode(
            r#"{"keyspaces": {"a": {"sharded": "yes", "vindexes": {"v": {"type": 1, "params": {"x": 2}}},
                 "tables": {"t": {"column_vindexes": [7, {"column": ["c"], "name": "v"}], "auto_increment": "id"}}},
                 "b": []}}"#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "keyspaces.a.sharded",
                "keyspaces.a.vindexes.v.type",
                "keyspaces.a.vindexes.v.params",
                "keyspaces.a.tables.t.column_vindexes[0]",
                "keyspaces.a.tables.t.column_vindexes[1].column",
                "keyspaces.a.tables.t.auto_increment",
                "keyspaces.b",
            ]
        );
        assert_eq!(errs[6].message, "expected an object, found an array");
        assert_eq!(decode("[]").1[0].path, "");
        assert_eq!(decode("{}").1[0].path, "keyspaces");
        assert!(decode("{").1[0].message.starts_with("invalid JSON"));
        assert_eq!(decode(r#"{"keyspaces": {}}"#).1, vec![]);
    }
}
