//! Row storage: a clustered BTreeMap keyed by the primary key (so point lookups and PK ranges
//! never scan), unique secondary indexes, and the undo records transactions roll back with.

use crate::catalog::TableSchema;
use crate::types::{key_of, KeyPart, Val};
use shardgate_core::SqlError;
use std::collections::BTreeMap;

pub type Key = Vec<KeyPart>;

/// A table: schema plus rows.
#[derive(Clone, Debug)]
pub struct Table {
    pub schema: TableSchema,
    pub rows: BTreeMap<Key, Vec<Val>>,
    /// One map per entry of `schema.indexes` (empty for non-unique indexes): key -> PK.
    pub uniques: Vec<BTreeMap<Key, Key>>,
    /// Next AUTO_INCREMENT value.
    pub auto_inc: u64,
    next_rowid: i64,
}

impl Table {
    pub fn new(schema: TableSchema) -> Table {
        let n = schema.indexes.len();
        Table {
            schema,
            rows: BTreeMap::new(),
            uniques: vec![BTreeMap::new(); n],
            auto_inc: 1,
            next_rowid: 1,
        }
    }

    /// Primary key of a row that is not stored yet (allocates a hidden row id if needed).
    pub fn new_pk(&mut self, row: &[Val]) -> Key {
        if self.schema.primary.is_empty() {
            let id = self.next_rowid;
            self.next_rowid += 1;
            vec![KeyPart::of(&Val::Int(id))]
        } else {
            self.pk_of(row)
        }
    }

    fn pk_of(&self, row: &[Val]) -> Key {
        self.schema
            .primary
            .iter()
            .map(|&i| KeyPart::of(&row[i]))
            .collect()
    }

    fn index_key(&self, ix: usize, row: &[Val]) -> Option<Key> {
        let cols = &self.schema.indexes[ix].columns;
        let vals: Vec<Val> = cols.iter().map(|&i| row[i].clone()).collect();
        if vals.iter().any(|v| v.is_null()) {
            return None;
        }
        Some(key_of(&vals))
    }

    fn dup_error(&self, cols: &[usize], row: &[Val], key_name: &str) -> SqlError {
        let text: Vec<String> = cols
            .iter()
            .map(|&i| row[i].to_text().unwrap_or_else(|| "NULL".into()))
            .collect();
        SqlError::new(
            shardgate_core::error::codes::ER_DUP_ENTRY,
            "23000",
            format!(
                "Duplicate entry '{}' for key '{}'",
                text.join("-"),
                key_name
            ),
        )
    }

    /// The PK of the row a new/changed row would collide with (primary or unique), if any,
    /// ignoring the row stored at `except`.
    pub fn conflict(&self, pk: &Key, row: &[Val], except: Option<&Key>) -> Option<(Key, SqlError)> {
        if !self.schema.primary.is_empty() && Some(pk) != except && self.rows.contains_key(pk) {
            return Some((
                pk.clone(),
                self.dup_error(&self.schema.primary, row, "PRIMARY"),
            ));
        }
        for (ix, idx) in self.schema.indexes.iter().enumerate() {
            if !idx.unique {
                continue;
            }
            if let Some(k) = self.index_key(ix, row) {
                if let Some(owner) = self.uniques[ix].get(&k) {
                    if Some(owner) != except {
                        return Some((owner.clone(), self.dup_error(&idx.columns, row, &idx.name)));
                    }
                }
            }
        }
        None
    }

    /// Stores a row under `pk` after checking keys.
    pub fn insert(&mut self, pk: Key, row: Vec<Val>) -> Result<(), SqlError> {
        if let Some((_, e)) = self.conflict(&pk, &row, None) {
            return Err(e);
        }
        self.put_raw(pk, row);
        Ok(())
    }

    /// Stores without checks (undo and internal use).
    pub fn put_raw(&mut self, pk: Key, row: Vec<Val>) {
        for ix in 0..self.schema.indexes.len() {
            if self.schema.indexes[ix].unique {
                if let Some(k) = self.index_key(ix, &row) {
                    self.uniques[ix].insert(k, pk.clone());
                }
            }
        }
        self.rows.insert(pk, row);
    }

    pub fn remove(&mut self, pk: &Key) -> Option<Vec<Val>> {
        let row = self.rows.remove(pk)?;
        for ix in 0..self.schema.indexes.len() {
            if self.schema.indexes[ix].unique {
                if let Some(k) = self.index_key(ix, &row) {
                    if self.uniques[ix].get(&k) == Some(pk) {
                        self.uniques[ix].remove(&k);
                    }
                }
            }
        }
        Some(row)
    }

    /// Replaces the row at `old_pk` with `row`; returns the new PK.
    pub fn update(&mut self, old_pk: &Key, row: Vec<Val>) -> Result<Key, SqlError> {
        let new_pk = if self.schema.primary.is_empty() {
            old_pk.clone()
        } else {
            self.pk_of(&row)
        };
        if let Some((_, e)) = self.conflict(&new_pk, &row, Some(old_pk)) {
            return Err(e);
        }
        self.remove(old_pk);
        self.put_raw(new_pk.clone(), row);
        Ok(new_pk)
    }

    /// Rebuilds unique maps (after CREATE UNIQUE INDEX); fails on existing duplicates.
    pub fn rebuild_indexes(&mut self) -> Result<(), SqlError> {
        self.uniques = vec![BTreeMap::new(); self.schema.indexes.len()];
        let rows: Vec<(Key, Vec<Val>)> = self
            .rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (pk, row) in rows {
            for ix in 0..self.schema.indexes.len() {
                if !self.schema.indexes[ix].unique {
                    continue;
                }
                if let Some(k) = self.index_key(ix, &row) {
                    if self.uniques[ix].contains_key(&k) {
                        let idx = &self.schema.indexes[ix];
                        return Err(self.dup_error(&idx.columns, &row, &idx.name));
                    }
                    self.uniques[ix].insert(k, pk.clone());
                }
            }
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        for u in &mut self.uniques {
            u.clear();
        }
        self.auto_inc = 1;
    }
}

/// What to do to undo one row change.
#[derive(Clone, Debug)]
pub enum Undo {
    Inserted {
        db: String,
        table: String,
        pk: Key,
    },
    Deleted {
        db: String,
        table: String,
        pk: Key,
        row: Vec<Val>,
    },
    Updated {
        db: String,
        table: String,
        old_pk: Key,
        new_pk: Key,
        old_row: Vec<Val>,
    },
}
