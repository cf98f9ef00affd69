//! The workload generator: draws statements and fault episodes for a [`Draw`], runs each
//! statement on the [`Reference`] as it goes, and writes the whole run as scenario text whose
//! expectations are the reference's answers.
//!
//! What it draws: point selects, IN lists, scatter selects (ORDER BY on a total order, with
//! LIMIT/OFFSET; or unordered), aggregates with and without GROUP BY/HAVING, DISTINCT, inserts,
//! updates, deletes, joins on routing keys and cross-shard joins on other columns, upserts
//! (ON DUPLICATE KEY UPDATE, REPLACE), single-shard UPDATE/DELETE with ORDER BY/LIMIT, transactions
//! (BEGIN … COMMIT/ROLLBACK, autocommit off), multi-statement batches, prepared statements, a
//! few statements that must fail (1054, 1062, 1064), and the gateway's own `set workload`. Results are compared as ordered lists only when the ORDER BY
//! fixes the order (the primary key breaks ties); everything else is compared as a multiset.
//!
//! What it stays away from, because the gateway legitimately differs from one server: writes
//! that rely on cross-shard uniqueness (`id` of tables sharded by `cid` is always fresh),
//! updates of a vindex column, LIMIT without a total ORDER BY, multi-shard DML with LIMIT,
//! subqueries (uncorrelated ones are refused with 1235 even when they carry
//! the outer query's routing key; correlated ones fail in the engine) and other 1235 shapes,
//! sequences and LAST_INSERT_ID(), mixed-case text
//! (case-insensitive collations make MIN/MAX/GROUP BY pick either spelling).

use super::reference::{RefResult, Reference};
use super::{Draw, Table, TableKind, KEYSPACE};
use crate::render;
use crate::scenario::parse_params;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardgate_core::wire::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What [`generate`] produced.
pub struct Generated {
    pub text: String,
    /// Statements sent by the scripted clients (workload plus checks).
    pub statements: usize,
    /// The reference's final table contents, by table name.
    pub final_tables: BTreeMap<String, Vec<Vec<Value>>>,
}

const WORDS: &[&str] = &["ab", "cd", "ef", "gh", "m", "q", "xy", "zz"];
/// Routing keys of tables sharded by `id`.
const ID_KEYS: i64 = 40;
/// Routing keys of tables sharded by `cid`.
const CID_KEYS: i64 = 15;

/// How a result is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// ORDER BY fixes the order.
    Fixed,
    /// Compared as a multiset.
    Any,
}

/// One generated statement.
#[derive(Clone)]
struct Stmt {
    sql: String,
    order: Order,
    /// A scatter select without LIMIT: every shard answers with a result set (fault target).
    full_scatter: bool,
}

impl Stmt {
    fn read(sql: String, order: Order) -> Stmt {
        Stmt {
            sql,
            order,
            full_scatter: false,
        }
    }
    fn write(sql: String) -> Stmt {
        Stmt {
            sql,
            order: Order::Any,
            full_scatter: false,
        }
    }
}

struct Gen<'a> {
    draw: &'a Draw,
    rng: ChaCha8Rng,
    reference: Reference,
    out: String,
    /// The client `statement`/`query` records run on.
    current: String,
    statements: usize,
    /// Next fresh `id` for tables sharded by `cid` (unique across shards by construction).
    next_id: i64,
    throwaway: u32,
    marker: u32,
    prepared: u32,
    /// `set autocommit=0` is in force on client a.
    autocommit_off: bool,
    /// Ids handed to inserts drawn in this step but not run yet (a batch draws several).
    reserved: BTreeSet<(String, i64)>,
}

/// Generates the scenario of a draw. The topology line names the vschema `vschema_name`.
pub fn generate(draw: &Draw, vschema_name: &str) -> Generated {
    let mut g = Gen {
        draw,
        rng: ChaCha8Rng::seed_from_u64(draw.seed ^ 0x9e37_79b9_7f4a_7c15),
        reference: Reference::new(KEYSPACE),
        out: String::new(),
        current: String::new(),
        statements: 0,
        next_id: 1000,
        throwaway: 0,
        marker: 0,
        prepared: 0,
        autocommit_off: false,
        reserved: BTreeSet::new(),
    };
    g.header(vschema_name);
    g.setup();
    for _ in 0..draw.steps {
        g.step();
    }
    g.finish();
    let final_tables = draw
        .tables
        .iter()
        .map(|t| (t.name.clone(), g.reference.table_rows(&t.name)))
        .collect();
    Generated {
        text: g.out,
        statements: g.statements,
        final_tables,
    }
}

impl Gen<'_> {
    // ---- drawing helpers ----

    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000u32) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn table(&mut self) -> Table {
        let i = self.rng.random_range(0..self.draw.tables.len());
        self.draw.tables[i].clone()
    }

    fn shard(&mut self) -> String {
        let i = self.rng.random_range(0..self.draw.shards.len());
        self.draw.shards[i].clone()
    }

    fn key(&mut self, t: &Table) -> i64 {
        match t.kind {
            TableKind::ById => self.rng.random_range(1..=ID_KEYS),
            TableKind::ByCustomer => self.rng.random_range(1..=CID_KEYS),
        }
    }

    fn keys(&mut self, t: &Table) -> String {
        let n = self.rng.random_range(1..=4usize);
        let keys: Vec<String> = (0..n).map(|_| self.key(t).to_string()).collect();
        keys.join(", ")
    }

    fn k_value(&mut self) -> String {
        if self.rng.random_bool(0.1) {
            "NULL".into()
        } else {
            self.rng.random_range(-3..=12i64).to_string()
        }
    }

    fn s_value(&mut self) -> String {
        if self.rng.random_bool(0.1) {
            "NULL".into()
        } else {
            format!("'{}'", self.pick(WORDS))
        }
    }

    fn d_value(&mut self) -> String {
        if self.rng.random_bool(0.1) {
            "NULL".into()
        } else {
            let cents = self.rng.random_range(-500..=5000i64);
            format!("{}.{:02}", cents / 100, (cents % 100).abs()).replace("0.-", "-0.")
        }
    }

    /// A select list: `*` or some columns in some order.
    fn columns(&mut self, t: &Table) -> String {
        if self.rng.random_bool(0.2) {
            return "*".into();
        }
        let mut cols: Vec<&str> = t.columns().to_vec();
        let keep = self.rng.random_range(1..=cols.len());
        for i in (1..cols.len()).rev() {
            let j = self.rng.random_range(0..=i);
            cols.swap(i, j);
        }
        cols.truncate(keep);
        cols.join(", ")
    }

    /// A filter that does not name the routing key (the select scatters).
    fn scatter_filter(&mut self, t: &Table) -> String {
        match self.rng.random_range(0..7u32) {
            0 | 1 => String::new(),
            2 => format!(" where k > {}", self.rng.random_range(-2..=8i64)),
            3 => format!(" where s = '{}'", self.pick(WORDS)),
            4 => " where k is null".into(),
            5 => {
                let lo = self.rng.random_range(-3..=6i64);
                format!(
                    " where k between {lo} and {}",
                    lo + self.rng.random_range(0..=6i64)
                )
            }
            _ => match t.kind {
                TableKind::ById => format!(" where d > {}", self.rng.random_range(-5..=40i64)),
                TableKind::ByCustomer => format!(" where cid < {}", self.key(t)),
            },
        }
    }

    /// Ids of `t` that exist (or are promised to an insert drawn in this step).
    fn present_ids(&mut self, t: &Table) -> BTreeSet<i64> {
        let mut ids: BTreeSet<i64> = self
            .reserved
            .iter()
            .filter(|(n, _)| *n == t.name)
            .map(|(_, i)| *i)
            .collect();
        if let RefResult::Rows { rows, .. } =
            self.reference
                .run("__gen", &format!("select id from {}", t.name), &[])
        {
            for r in rows {
                if let Some(Value::Int(i)) = r.first() {
                    ids.insert(*i);
                }
            }
        }
        ids
    }

    // ---- statements ----

    fn select(&mut self) -> Stmt {
        let t = self.table();
        let vc = t.vindex_column();
        match self.rng.random_range(0..14u32) {
            0 | 1 => {
                let cols = self.columns(&t);
                let k = self.key(&t);
                Stmt::read(
                    format!("select {cols} from {} where {vc} = {k}", t.name),
                    Order::Any,
                )
            }
            10 => self.select_expressions(&t),
            11 => {
                // Groups ordered by an aggregate, ties broken by the (unique) group key.
                let key = self.pick(&["k", "s", vc]);
                let f = self.scatter_filter(&t);
                let dir = self.pick(&["", " desc"]);
                let limit = if self.rng.random_bool(0.5) {
                    format!(" limit {}", self.rng.random_range(1..=4u32))
                } else {
                    String::new()
                };
                let having = if self.rng.random_bool(0.3) {
                    " having c > 1"
                } else {
                    ""
                };
                Stmt::read(
                    format!(
                        "select {key}, count(*) as c from {}{f} group by {key}{having} order by c{dir}, {key}{limit}",
                        t.name
                    ),
                    Order::Fixed,
                )
            }
            12 => {
                let keys = self.keys(&t);
                let cols = self.columns(&t);
                let limit = self.rng.random_range(0..=3u32);
                let dir = self.pick(&["", " desc"]);
                Stmt::read(
                    format!(
                        "select {cols} from {} where {vc} in ({keys}) order by id{dir} limit {limit}",
                        t.name
                    ),
                    Order::Fixed,
                )
            }
            13 => {
                // DISTINCT over several columns, ordered by all of them: a total order.
                let f = self.scatter_filter(&t);
                let mut s = Stmt::read(
                    format!("select distinct k, s from {}{f} order by k desc, s", t.name),
                    Order::Fixed,
                );
                s.full_scatter = true;
                s
            }
            2 => {
                let cols = self.columns(&t);
                let keys = self.keys(&t);
                if self.rng.random_bool(0.5) {
                    Stmt::read(
                        format!(
                            "select {cols} from {} where {vc} in ({keys}) order by id",
                            t.name
                        ),
                        Order::Fixed,
                    )
                } else {
                    Stmt::read(
                        format!("select {cols} from {} where {vc} in ({keys})", t.name),
                        Order::Any,
                    )
                }
            }
            3 | 4 => {
                // ORDER BY a column, the primary key breaking ties: a total order.
                let cols = self.columns(&t);
                let f = self.scatter_filter(&t);
                let by = self.pick(&["k", "s", vc, "id"]);
                let dir = self.pick(&["", " desc"]);
                let tail = if by == "id" {
                    format!("id{dir}")
                } else {
                    format!("{by}{dir}, id")
                };
                let limit = match self.rng.random_range(0..4u32) {
                    0 => format!(" limit {}", self.rng.random_range(0..=6u32)),
                    1 => format!(
                        " limit {} offset {}",
                        self.rng.random_range(1..=5u32),
                        self.rng.random_range(0..=4u32)
                    ),
                    _ => String::new(),
                };
                let mut s = Stmt::read(
                    format!("select {cols} from {}{f} order by {tail}{limit}", t.name),
                    Order::Fixed,
                );
                s.full_scatter = limit.is_empty();
                s
            }
            5 => {
                let cols = self.columns(&t);
                let f = self.scatter_filter(&t);
                let mut s = Stmt::read(format!("select {cols} from {}{f}", t.name), Order::Any);
                s.full_scatter = true;
                s
            }
            6 | 7 => {
                let f = self.scatter_filter(&t);
                let aggs = match t.kind {
                    TableKind::ById => self.pick(&[
                        "count(*), sum(k), min(k), max(k)",
                        "count(k), sum(d), min(s), max(s)",
                        "count(*), max(d), min(d)",
                        "sum(k), count(s)",
                        "avg(k), count(*)",
                        "sum(d), avg(d), min(id), max(id)",
                    ]),
                    TableKind::ByCustomer => self.pick(&[
                        "count(*), sum(k), min(k), max(k)",
                        "count(k), min(s), max(s), max(cid)",
                        "sum(cid), count(*)",
                        "avg(k), count(*)",
                    ]),
                };
                let mut s = Stmt::read(format!("select {aggs} from {}{f}", t.name), Order::Fixed);
                s.full_scatter = true;
                s
            }
            8 => {
                let f = self.scatter_filter(&t);
                let key = self.pick(&["k", "s", vc]);
                let agg = self.pick(&["count(*)", "sum(k)", "max(id)", "count(*), min(id)"]);
                let having = if self.rng.random_bool(0.25) {
                    " having count(*) > 1"
                } else {
                    ""
                };
                let (order, o) = match self.rng.random_range(0..3u32) {
                    0 => (format!(" order by {key}"), Order::Fixed),
                    1 => (format!(" order by {key} desc"), Order::Fixed),
                    _ => (String::new(), Order::Any),
                };
                let mut s = Stmt::read(
                    format!(
                        "select {key}, {agg} from {}{f} group by {key}{having}{order}",
                        t.name
                    ),
                    o,
                );
                s.full_scatter = true;
                s
            }
            _ => {
                let col = self.pick(&["k", "s"]);
                let f = self.scatter_filter(&t);
                let (order, o) = if self.rng.random_bool(0.5) {
                    (format!(" order by {col}"), Order::Fixed)
                } else {
                    (String::new(), Order::Any)
                };
                let mut s = Stmt::read(
                    format!("select distinct {col} from {}{f}{order}", t.name),
                    o,
                );
                s.full_scatter = true;
                s
            }
        }
    }

    /// Expressions, functions and aliases in the select list (and ORDER BY an alias).
    fn select_expressions(&mut self, t: &Table) -> Stmt {
        let vc = t.vindex_column();
        let f = if self.rng.random_bool(0.4) {
            format!(" where {vc} in ({})", self.keys(t))
        } else {
            self.scatter_filter(t)
        };
        let (exprs, alias) = match (self.rng.random_range(0..4u32), t.kind) {
            (0, _) => ("id, k + 1 as kk, k * 2", "kk"),
            (1, _) => ("id, upper(s) as u, length(s)", "u"),
            (2, TableKind::ById) => ("id, d * 2 as dd, coalesce(k, -1)", "dd"),
            (2, TableKind::ByCustomer) => ("id, cid + k as ck, coalesce(s, 'none')", "ck"),
            _ => ("id, concat(s, '-', k) as c, k is null", "c"),
        };
        let mut s = if self.rng.random_bool(0.6) {
            Stmt::read(
                format!("select {exprs} from {}{f} order by {alias}, id", t.name),
                Order::Fixed,
            )
        } else {
            Stmt::read(format!("select {exprs} from {}{f}", t.name), Order::Any)
        };
        s.full_scatter = !f.contains(" in (");
        s
    }

    /// A scatter select without LIMIT: every shard answers with a result set.
    fn full_scatter(&mut self) -> Stmt {
        loop {
            let s = self.select();
            if s.full_scatter {
                return s;
            }
        }
    }

    /// `(id, k, s, d), …`: one row of drawn values per id.
    fn values_by_id<'a>(&mut self, ids: impl IntoIterator<Item = &'a i64>) -> String {
        let rows: Vec<String> = ids
            .into_iter()
            .map(|id| {
                let (k, s, d) = (self.k_value(), self.s_value(), self.d_value());
                format!("({id}, {k}, {s}, {d})")
            })
            .collect();
        rows.join(", ")
    }

    /// `insert into <table> (id, k, s, d)` with one row of drawn values per id.
    fn insert_rows_by_id(&mut self, table: &str, ids: &[i64]) -> Stmt {
        let values = self.values_by_id(ids);
        Stmt::write(format!("insert into {table} (id, k, s, d) values {values}"))
    }

    fn insert(&mut self) -> Stmt {
        let t = self.table();
        match t.kind {
            TableKind::ById => {
                let present = self.present_ids(&t);
                let free: Vec<i64> = (1..=ID_KEYS + 10)
                    .filter(|i| !present.contains(i))
                    .collect();
                if self.rng.random_bool(0.08) {
                    if let Some(&dup) = present.iter().next() {
                        // A duplicate key, half the time with a new row (often on another
                        // shard): ERR 1062 on both sides, and nothing of the statement stays
                        // (the gateway undoes the other shards' part: an implicit transaction
                        // in autocommit, a statement savepoint inside a transaction).
                        let mut ids = vec![dup];
                        if !free.is_empty() && self.rng.random_bool(0.5) {
                            ids.push(self.pick(&free));
                        }
                        return self.insert_rows_by_id(&t.name, &ids);
                    }
                }
                if free.is_empty() {
                    return self.delete();
                }
                let n = self.rng.random_range(1..=3usize).min(free.len());
                let mut ids = BTreeSet::new();
                while ids.len() < n {
                    ids.insert(self.pick(&free));
                }
                for id in &ids {
                    self.reserved.insert((t.name.clone(), *id));
                }
                let ids: Vec<i64> = ids.into_iter().collect();
                self.insert_rows_by_id(&t.name, &ids)
            }
            TableKind::ByCustomer => {
                let n = self.rng.random_range(1..=3usize);
                let rows: Vec<String> = (0..n)
                    .map(|_| {
                        self.next_id += 1;
                        let id = self.next_id;
                        let cid = self.key(&t);
                        let (k, s) = (self.k_value(), self.s_value());
                        format!("({id}, {cid}, {k}, {s})")
                    })
                    .collect();
                Stmt::write(format!(
                    "insert into {} (id, cid, k, s) values {}",
                    t.name,
                    rows.join(", ")
                ))
            }
        }
    }

    fn update(&mut self) -> Stmt {
        let t = self.table();
        let vc = t.vindex_column();
        let set = match (self.rng.random_range(0..3u32), t.kind) {
            (0, _) => "k = k + 1".to_string(),
            (1, _) => format!("s = {}", self.s_value()),
            (_, TableKind::ById) => "d = d + 1".to_string(),
            (_, TableKind::ByCustomer) => format!("k = {}", self.k_value()),
        };
        let filter = match self.rng.random_range(0..3u32) {
            0 => format!(" where {vc} = {}", self.key(&t)),
            1 => format!(" where {vc} in ({})", self.keys(&t)),
            _ => self.scatter_filter(&t),
        };
        Stmt::write(format!("update {} set {set}{filter}", t.name))
    }

    fn delete(&mut self) -> Stmt {
        let t = self.table();
        let vc = t.vindex_column();
        let filter = match self.rng.random_range(0..4u32) {
            0 | 1 => format!(" where {vc} = {}", self.key(&t)),
            2 => format!(" where {vc} in ({})", self.keys(&t)),
            _ => format!(" where k = {}", self.rng.random_range(-3..=12i64)),
        };
        Stmt::write(format!("delete from {}{filter}", t.name))
    }

    /// A statement that must fail the same way on the gateway and on one server.
    fn failing(&mut self) -> Stmt {
        let t = self.table();
        let vc = t.vindex_column();
        match self.rng.random_range(0..3u32) {
            0 => Stmt::read(
                format!(
                    "select nosuch from {} where {vc} = {}",
                    t.name,
                    self.key(&t)
                ),
                Order::Any,
            ),
            1 => Stmt::read(format!("select * from {} where", t.name), Order::Any),
            _ => Stmt::read(format!("selec k from {}", t.name), Order::Any),
        }
    }

    /// A workload statement (no transaction control).
    fn statement(&mut self) -> Stmt {
        match self.rng.random_range(0..24u32) {
            0..=8 => self.select(),
            9..=12 => self.insert(),
            13..=15 => self.update(),
            16 | 17 => self.delete(),
            18 => self.failing(),
            19 => self.join(),
            20 => self.upsert(),
            21 => self.single_shard_limited_write(),
            _ => self.select(),
        }
    }

    /// Two tables joined on their routing keys: rows with equal keys share a shard, so the
    /// join runs on each shard (or on one, with a key).
    fn join(&mut self) -> Stmt {
        let x = self.table();
        let y = self.table();
        let (xv, yv) = (x.vindex_column(), y.vindex_column());
        if self.rng.random_bool(0.3) {
            // On a column that does not route: a nested-loop join at the gateway (the right
            // side once per left row). Filters stay on the left side (a LEFT JOIN's WHERE on
            // the right side is refused), and the ORDER BY is total, so LIMIT is fine.
            let filter = if self.rng.random_bool(0.4) {
                format!(" where x.{xv} = {}", self.key(&x))
            } else {
                String::new()
            };
            let (join, cols) = if self.rng.random_bool(0.4) {
                ("left join", "x.id, y.id, y.k")
            } else {
                ("join", "x.id, x.s, y.id, y.k")
            };
            if self.rng.random_bool(0.25) {
                // Aggregates over the joined rows, merged at the gateway.
                return Stmt::read(
                    format!(
                        "select x.k, count(*), count(y.id), sum(y.k) from {} x {join} {} y on x.k = y.k{filter} group by x.k order by x.k",
                        x.name, y.name
                    ),
                    Order::Fixed,
                );
            }
            let limit = if self.rng.random_bool(0.3) {
                format!(" limit {}", self.rng.random_range(1..=4i64))
            } else {
                String::new()
            };
            return Stmt::read(
                format!(
                    "select {cols} from {} x {join} {} y on x.k = y.k{filter} order by x.id, y.id{limit}",
                    x.name, y.name
                ),
                Order::Fixed,
            );
        }
        let filter = if self.rng.random_bool(0.4) {
            format!(" where x.{xv} = {}", self.key(&x))
        } else if self.rng.random_bool(0.3) {
            format!(" where y.k > {}", self.rng.random_range(-2..=8i64))
        } else {
            String::new()
        };
        let (join, cols) = if self.rng.random_bool(0.3) {
            ("left join", "x.id, y.id, y.k")
        } else {
            ("join", "x.id, y.id, x.k, y.s")
        };
        if self.rng.random_bool(0.6) {
            Stmt::read(
                format!(
                    "select {cols} from {} x {join} {} y on x.{xv} = y.{yv}{filter} order by x.id, y.id",
                    x.name, y.name
                ),
                Order::Fixed,
            )
        } else {
            Stmt::read(
                format!(
                    "select count(*) from {} x {join} {} y on x.{xv} = y.{yv}{filter}",
                    x.name, y.name
                ),
                Order::Fixed,
            )
        }
    }

    /// INSERT … ON DUPLICATE KEY UPDATE and REPLACE on a table sharded by its primary key
    /// (elsewhere the key is unique per shard only).
    fn upsert(&mut self) -> Stmt {
        let Some(t) = self
            .draw
            .tables
            .iter()
            .find(|t| t.kind == TableKind::ById)
            .cloned()
        else {
            return self.insert();
        };
        let n = self.rng.random_range(1..=3usize);
        let mut ids = BTreeSet::new();
        while ids.len() < n {
            ids.insert(self.rng.random_range(1..=ID_KEYS));
        }
        let values = self.values_by_id(&ids);
        for id in &ids {
            self.reserved.insert((t.name.clone(), *id));
        }
        if self.rng.random_bool(0.5) {
            let set = self.pick(&["k = k + 1", "s = values(s)", "d = d + 1, k = 0"]);
            Stmt::write(format!(
                "insert into {} (id, k, s, d) values {values} on duplicate key update {set}",
                t.name,
            ))
        } else {
            Stmt::write(format!(
                "replace into {} (id, k, s, d) values {values}",
                t.name,
            ))
        }
    }

    /// UPDATE/DELETE … ORDER BY … LIMIT on one shard (the routing key given).
    fn single_shard_limited_write(&mut self) -> Stmt {
        let t = self.table();
        let vc = t.vindex_column();
        let k = self.key(&t);
        let limit = self.rng.random_range(1..=2u32);
        if self.rng.random_bool(0.6) {
            Stmt::write(format!(
                "update {} set k = k + 10 where {vc} = {k} order by id limit {limit}",
                t.name
            ))
        } else {
            Stmt::write(format!(
                "delete from {} where {vc} = {k} order by id desc limit {limit}",
                t.name
            ))
        }
    }

    // ---- writing the scenario ----

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn on(&mut self, client: &str) {
        if self.current != client {
            self.current = client.to_string();
            let l = format!("on {client}");
            self.line(&l);
        }
    }

    fn rows_text(rows: &[Vec<Value>]) -> String {
        let mut out = String::new();
        for r in rows {
            out.push_str(&render::expected_row(r));
            out.push('\n');
        }
        out
    }

    fn types(columns: usize) -> String {
        "T".repeat(columns.max(1))
    }

    /// `statement`/`query` record of `sql` on `client`, expecting `res`; an error is followed
    /// by `select 1` on the same connection.
    fn record(&mut self, client: &str, sql: &str, res: &RefResult, order: Order) {
        self.on(client);
        self.statements += 1;
        match res {
            RefResult::Rows { columns, rows } => {
                let sort = if order == Order::Fixed {
                    "nosort"
                } else {
                    "rowsort"
                };
                let text = format!(
                    "query {} {sort}\n{sql}\n----\n{}\n",
                    Self::types(*columns),
                    Self::rows_text(rows)
                );
                self.out.push_str(&text);
            }
            RefResult::Ok { affected } => {
                let text = format!("statement ok affected={affected}\n{sql}\n\n");
                self.out.push_str(&text);
            }
            RefResult::Err { code } => {
                let text = format!("statement error {code}\n{sql}\n\n");
                self.out.push_str(&text);
                self.usable(client);
            }
        }
    }

    /// The connection still answers after an error.
    fn usable(&mut self, client: &str) {
        self.on(client);
        self.statements += 1;
        self.out.push_str("query I nosort\nselect 1\n----\n1\n\n");
    }

    /// `await <client> ...` for one result of a command.
    fn await_text(client: &str, res: &RefResult, order: Order, more: bool) -> String {
        let more = if more { " more" } else { "" };
        match res {
            RefResult::Rows { rows, .. } => {
                let what = if order == Order::Fixed {
                    "rows"
                } else {
                    "rowsort"
                };
                format!(
                    "await {client} {what}{more}\n----\n{}\n",
                    Self::rows_text(rows)
                )
            }
            RefResult::Ok { affected } => format!("await {client} ok affected={affected}{more}\n"),
            RefResult::Err { code } => format!("await {client} error {code}\n"),
        }
    }

    /// Runs a statement on the reference and records it.
    fn run(&mut self, client: &str, s: &Stmt) {
        let res = self.reference.run(client, &s.sql, &[]);
        self.record(client, &s.sql, &res, s.order);
    }

    // ---- the run ----

    fn header(&mut self, vschema_name: &str) {
        let d = self.draw;
        let first = format!(
            "# seed {}: a randomised workload whose every answer must equal one unsharded server's (shards {}; faults {})",
            d.seed,
            d.shards.join(","),
            d.faults.describe()
        );
        self.line(&first);
        let topo = if d.sharded() {
            format!(
                "topology keyspace={KEYSPACE} shards={} vschema={vschema_name}",
                d.shards.join(",")
            )
        } else {
            format!("topology keyspace={KEYSPACE} shards=0")
        };
        self.line(&topo);
        let seed = format!("seed {}", d.seed);
        self.line(&seed);
        if d.options.world == crate::scenario::WorldKind::L1 {
            self.line("world l1");
        }
        if let Some(n) = d.merge_queue_rows {
            self.line(&format!("tune merge_queue_rows={n}"));
        }
        if d.split_packets {
            self.line("fault split_packets");
        }
        self.line("conn a");
        self.line("conn b");
        self.current = "a".into();
        self.line("");
    }

    fn setup(&mut self) {
        let tables = self.draw.tables.clone();
        for t in &tables {
            let ddl = t.ddl();
            let res = self.reference.run("a", &ddl, &[]);
            self.on("a");
            self.statements += 1;
            match res {
                RefResult::Err { code } => {
                    let text = format!("statement error {code}\n{ddl}\n\n");
                    self.out.push_str(&text);
                }
                _ => {
                    let text = format!("statement ok\n{ddl}\n\n");
                    self.out.push_str(&text);
                }
            }
            for _ in 0..2 {
                let s = match t.kind {
                    TableKind::ById => {
                        let n = self.rng.random_range(3..=8usize);
                        let mut ids = BTreeSet::new();
                        while ids.len() < n {
                            ids.insert(self.rng.random_range(1..=ID_KEYS));
                        }
                        let present = self.present_ids(t);
                        let rows: Vec<String> = ids
                            .iter()
                            .filter(|id| !present.contains(id))
                            .map(|id| {
                                let (k, s, d) = (self.k_value(), self.s_value(), self.d_value());
                                format!("({id}, {k}, {s}, {d})")
                            })
                            .collect();
                        if rows.is_empty() {
                            continue;
                        }
                        Stmt::write(format!(
                            "insert into {} (id, k, s, d) values {}",
                            t.name,
                            rows.join(", ")
                        ))
                    }
                    TableKind::ByCustomer => {
                        let n = self.rng.random_range(3..=8usize);
                        let rows: Vec<String> = (0..n)
                            .map(|_| {
                                self.next_id += 1;
                                let id = self.next_id;
                                let cid = self.key(t);
                                let (k, s) = (self.k_value(), self.s_value());
                                format!("({id}, {cid}, {k}, {s})")
                            })
                            .collect();
                        Stmt::write(format!(
                            "insert into {} (id, cid, k, s) values {}",
                            t.name,
                            rows.join(", ")
                        ))
                    }
                };
                self.run("a", &s);
            }
        }
    }

    fn a_in_txn(&self) -> bool {
        self.reference.in_transaction("a")
    }

    /// One workload step: a fault episode, transaction control, a batch, a prepared
    /// statement, or one statement.
    fn step(&mut self) {
        self.reserved.clear();
        let f = self.draw.faults.clone();
        let known = self.draw.options.known_bugs;
        let in_txn = self.a_in_txn() || self.reference.in_transaction("b");
        if self.chance(f.read_error) {
            return self.fault_read_error();
        }
        if self.chance(f.read_drop) && (known || !in_txn) {
            return self.fault_read_drop();
        }
        if self.chance(f.kill_query) {
            return self.fault_kill_query();
        }
        if self.chance(f.kill_connection) {
            return self.fault_kill_connection();
        }
        if self.chance(f.crash_idle) && (known || !in_txn) {
            let x = self.shard();
            self.line(&format!("crash shard={x}"));
            self.line(&format!("restart shard={x}"));
            return;
        }
        if self.chance(f.crash_mid) && (known || !in_txn) {
            return self.fault_crash_mid();
        }
        if self.chance(f.partition) {
            return self.fault_hold(true);
        }
        if self.chance(f.stall) {
            return self.fault_hold(false);
        }
        if self.chance(f.panic) {
            return self.fault_panic();
        }
        if self.chance(f.disconnect) {
            return self.fault_disconnect();
        }
        match self.rng.random_range(0..100u32) {
            0..=5 => self.transaction_control(),
            6..=10 => self.batch(),
            11..=15 => self.prepared(),
            16 => {
                let w = self.pick(&["olap", "oltp"]);
                self.on("a");
                self.statements += 1;
                let text = format!("statement ok\nset workload='{w}'\n\n");
                self.out.push_str(&text);
            }
            17..=30 => {
                let s = self.statement();
                self.run("b", &s);
            }
            _ => {
                let s = self.statement();
                self.run("a", &s);
            }
        }
    }

    fn transaction_control(&mut self) {
        if self.rng.random_bool(0.25) {
            // Client b's transactions interleave with a's (the engines isolate nothing, so
            // the shards and the reference see the same interleaving).
            let sql = if self.reference.in_transaction("b") {
                self.pick(&["commit", "rollback"])
            } else {
                "begin"
            };
            return self.run("b", &Stmt::write(sql.into()));
        }
        if self.a_in_txn() {
            let end = if self.rng.random_bool(0.6) {
                "commit"
            } else {
                "rollback"
            };
            self.run("a", &Stmt::write(end.into()));
            if self.autocommit_off {
                self.autocommit_off = false;
                self.run("a", &Stmt::write("set autocommit=1".into()));
            }
        } else if self.rng.random_bool(0.2) && (self.draw.sharded() || self.draw.options.known_bugs)
        {
            // Known bug (pass-through): see super::KNOWN_BUGS.
            self.autocommit_off = true;
            self.run("a", &Stmt::write("set autocommit=0".into()));
        } else {
            self.run("a", &Stmt::write("begin".into()));
        }
    }

    /// A multi-statement batch: each result is awaited; the batch stops at its first error.
    fn batch(&mut self) {
        let n = self.rng.random_range(2..=3usize);
        let stmts: Vec<Stmt> = (0..n)
            .map(|i| {
                if !self.autocommit_off && self.rng.random_bool(0.1) {
                    // Transaction control inside a batch (BEGIN inside a transaction commits
                    // it first, COMMIT outside one does nothing: as on one server). ROLLBACK
                    // only last: it brings back rows whose ids later statements of the batch
                    // were drawn to reuse (a multi-shard insert failing on one shard is a
                    // known bug, see super::KNOWN_BUGS).
                    let choices: &[&str] = if i + 1 == n {
                        &["begin", "commit", "rollback"]
                    } else {
                        &["begin", "commit"]
                    };
                    Stmt::write(self.pick(choices).into())
                } else {
                    self.statement()
                }
            })
            .collect();
        let sql: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
        let text = format!("send a {}\n", sql.join("; "));
        self.out.push_str(&text);
        for (i, s) in stmts.iter().enumerate() {
            let res = self.reference.run("a", &s.sql, &[]);
            self.statements += 1;
            let last = i + 1 == stmts.len() || res.is_err();
            let text = Self::await_text("a", &res, s.order, !last);
            self.out.push_str(&text);
            if res.is_err() {
                self.out.push('\n');
                self.usable("a");
                return;
            }
            if last {
                break;
            }
        }
        self.out.push('\n');
    }

    /// PREPARE once, EXECUTE once or twice with drawn parameters.
    fn prepared(&mut self) {
        let t = self.table();
        let vc = t.vindex_column();
        self.prepared += 1;
        let name = format!("p{}", self.prepared);
        type Params = Box<dyn Fn(&mut Gen<'_>) -> String>;
        let (sql, order, params): (String, Order, Params) = match self.rng.random_range(0..4u32) {
            0 => {
                let cols = self.columns(&t);
                let tt = t.clone();
                (
                    format!("select {cols} from {} where {vc} = ?", t.name),
                    Order::Any,
                    Box::new(move |g| g.key(&tt).to_string()),
                )
            }
            1 => (
                format!("select count(*), sum(k) from {} where k > ?", t.name),
                Order::Fixed,
                Box::new(|g| g.rng.random_range(-3..=10i64).to_string()),
            ),
            2 => {
                let tt = t.clone();
                (
                    format!("update {} set k = ? where {vc} = ?", t.name),
                    Order::Any,
                    Box::new(move |g| {
                        let k = g.k_value();
                        format!("{k} {}", g.key(&tt))
                    }),
                )
            }
            _ => match t.kind {
                TableKind::ById => {
                    let tt = t.clone();
                    (
                        format!("insert into {} (id, k, s, d) values (?, ?, ?, ?)", t.name),
                        Order::Any,
                        Box::new(move |g| {
                            let present = g.present_ids(&tt);
                            let free: Vec<i64> = (1..=ID_KEYS + 10)
                                .filter(|i| !present.contains(i))
                                .collect();
                            let id = if free.is_empty() { 1 } else { g.pick(&free) };
                            let (k, s, d) = (g.k_value(), g.s_value(), g.d_value());
                            format!("{id} {k} {s} {d}")
                        }),
                    )
                }
                TableKind::ByCustomer => {
                    let tt = t.clone();
                    (
                        format!("insert into {} (id, cid, k, s) values (?, ?, ?, ?)", t.name),
                        Order::Any,
                        Box::new(move |g| {
                            g.next_id += 1;
                            let id = g.next_id;
                            let cid = g.key(&tt);
                            let (k, s) = (g.k_value(), g.s_value());
                            format!("{id} {cid} {k} {s}")
                        }),
                    )
                }
            },
        };
        let client = if self.reference.in_transaction("b") || self.rng.random_bool(0.7) {
            "a"
        } else {
            "b"
        };
        self.statements += 1;
        let text = format!("prepare {client} {name} {sql}\n");
        self.out.push_str(&text);
        for _ in 0..self.rng.random_range(1..=2u32) {
            let p = params(self);
            let values = parse_params(&p).unwrap_or_default();
            let res = self.reference.run(client, &sql, &values);
            self.statements += 1;
            let text = format!("execute {client} {name} {p}\n");
            self.out.push_str(&text);
            match &res {
                RefResult::Rows { rows, .. } => {
                    if order == Order::Any {
                        self.out.push_str("expect rowsort\n");
                    }
                    let text = format!("----\n{}\n", Self::rows_text(rows));
                    self.out.push_str(&text);
                }
                RefResult::Ok { affected } => {
                    let text = format!("expect ok affected={affected}\n\n");
                    self.out.push_str(&text);
                }
                RefResult::Err { code } => {
                    let text = format!("expect error {code}\n\n");
                    self.out.push_str(&text);
                    self.usable(client);
                }
            }
        }
    }

    // ---- fault episodes ----

    fn fault_read_error(&mut self) {
        let x = self.shard();
        let rows = self.rng.random_range(0..=3u32);
        let code = self.pick(&[1105u16, 1205, 2013, 3024]);
        let s = self.full_scatter();
        let text = if rows == 0 {
            format!("fault shard={x} after_fields error={code}\n")
        } else {
            format!("fault shard={x} after_rows={rows} error={code}\n")
        };
        self.out.push_str(&text);
        // The read changes nothing on the reference.
        self.record("a", &s.sql, &RefResult::Err { code }, s.order);
    }

    fn fault_read_drop(&mut self) {
        let x = self.shard();
        let rows = self.rng.random_range(0..=3u32);
        let s = self.full_scatter();
        let text = format!("fault shard={x} drop_after_rows={rows}\n");
        self.out.push_str(&text);
        self.record("a", &s.sql, &RefResult::Err { code: 2013 }, s.order);
    }

    fn fault_kill_query(&mut self) {
        let x = self.shard();
        let rows = self.rng.random_range(0..=2u32);
        let s = self.full_scatter();
        self.statements += 2;
        let text = format!(
            "fault shard={x} stall_after_rows={rows}\nsend a {}\nkill query a from b\nawait a error 1317 70100\nresume shard={x}\n\n",
            s.sql
        );
        self.out.push_str(&text);
        self.usable("a");
    }

    fn fault_kill_connection(&mut self) {
        self.throwaway += 1;
        let c = format!("c{}", self.throwaway);
        let text = format!("conn {c}\n");
        self.out.push_str(&text);
        if self.rng.random_bool(0.5) {
            // Killed inside a transaction with writes: they roll back.
            self.run(&c, &Stmt::write("begin".into()));
            let s = self.insert();
            self.run(&c, &s);
        } else {
            let s = self.select();
            self.run(&c, &s);
        }
        self.statements += 1;
        let text = format!("kill {c} from b\nexpect closed {c}\n\n");
        self.out.push_str(&text);
        self.reference.disconnect(&c);
    }

    fn fault_crash_mid(&mut self) {
        let x = self.shard();
        let rows = self.rng.random_range(0..=2u32);
        let s = self.full_scatter();
        self.statements += 1;
        let text = format!(
            "fault shard={x} stall_after_rows={rows}\nsend a {}\ncrash shard={x}\nawait a error 2013\nrestart shard={x}\n\n",
            s.sql
        );
        self.out.push_str(&text);
        self.usable("a");
    }

    /// A statement in flight while the gateway is cut off from a shard (`partition`) or the
    /// shard holds its answers (`stall`); after the heal/resume it completes normally.
    fn fault_hold(&mut self, partition: bool) {
        let x = self.shard();
        // The probe leaves an idle pooled connection to every shard: nothing new to connect.
        let t = self.table();
        let probe = Stmt::read(format!("select count(*) from {}", t.name), Order::Fixed);
        self.run("a", &probe);
        let s = self.statement();
        let res = self.reference.run("a", &s.sql, &[]);
        self.statements += 1;
        let (cut, heal) = if partition {
            (format!("partition gateway shard={x}"), "heal".to_string())
        } else {
            (
                format!("fault shard={x} stall"),
                format!("resume shard={x}"),
            )
        };
        let text = format!(
            "{cut}\nsend a {}\nadvance 50ms\n{heal}\n{}\n",
            s.sql,
            Self::await_text("a", &res, s.order, false)
        );
        self.out.push_str(&text);
        if res.is_err() {
            self.usable("a");
        }
    }

    fn fault_panic(&mut self) {
        self.marker += 1;
        let m = format!("boom{}", self.marker);
        let s = self.statement();
        let text = format!("panic marker={m}\n");
        self.out.push_str(&text);
        // The statement never runs: the reference skips it.
        let sql = format!("/* {m} */ {}", s.sql);
        self.record("a", &sql, &RefResult::Err { code: 1105 }, s.order);
        self.line("panic off");
    }

    fn fault_disconnect(&mut self) {
        self.throwaway += 1;
        let c = format!("c{}", self.throwaway);
        let text = format!("conn {c}\n");
        self.out.push_str(&text);
        if self.rng.random_bool(0.5) {
            // Hangs up inside a transaction: its writes roll back.
            self.run(&c, &Stmt::write("begin".into()));
            let s = self.insert();
            self.run(&c, &s);
            let s = self.update();
            self.run(&c, &s);
        } else {
            // Hangs up in the middle of a result.
            let x = self.shard();
            let s = self.full_scatter();
            self.statements += 1;
            let text = format!(
                "fault shard={x} stall_after_rows=1\nsend {c} {}\ndisconnect {c}\nresume shard={x}\n",
                s.sql
            );
            self.out.push_str(&text);
            self.reference.disconnect(&c);
            self.line("");
            return;
        }
        let text = format!("disconnect {c}\n\n");
        self.out.push_str(&text);
        self.reference.disconnect(&c);
    }

    /// Ends open transactions, then reads every table back through the gateway.
    fn finish(&mut self) {
        if self.a_in_txn() {
            self.run("a", &Stmt::write("commit".into()));
        }
        if self.reference.in_transaction("b") {
            self.run("b", &Stmt::write("commit".into()));
        }
        if self.autocommit_off {
            self.run("a", &Stmt::write("set autocommit=1".into()));
        }
        let _ = writeln!(self.out, "# the final contents of every table");
        let tables = self.draw.tables.clone();
        for t in &tables {
            let s = Stmt::read(format!("select * from {}", t.name), Order::Any);
            self.run("a", &s);
        }
    }
}
