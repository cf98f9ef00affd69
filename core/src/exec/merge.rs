//! Merging the results of several shards into one result set, row by row.
//!
//! Three modes, chosen from the [`MergeSpec`]:
//! - **concat**: rows stream out shard by shard, in key-range order (deterministic where SQL
//!   leaves order open); a later shard's rows wait until earlier shards are done;
//! - **ordered**: a streaming k-way merge on the ORDER BY keys: a row leaves as soon as every
//!   unfinished shard has a head row to compare with;
//! - **grouped**: aggregates, GROUP BY, HAVING and DISTINCT need all rows: groups are kept
//!   (memory bounded by the number of groups, not rows), then sorted and limited.
//!
//! Rows are text-protocol payloads (`Bytes`), passed through without copying where possible:
//! columns added only for the merge sit at the end, so dropping them is a byte-prefix slice.

use super::compare::{compare_cells, CellOrder, Decimal};
use crate::wire::codec::put_lenenc_str;
use crate::wire::consts::ColumnType;
use crate::wire::value::TextRow;
use crate::wire::ColumnDef;
use bytes::{Bytes, BytesMut};
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

/// Column indexes at or above this denote hidden columns appended for the merge, counted from
/// the first hidden column (used while the position of `*`-expanded columns is unknown).
pub const HIDDEN_BASE: usize = 1 << 30;

/// One ORDER BY key: a column of the shard results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub col: usize,
    pub desc: bool,
}

/// How an aggregate column combines across shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// Partial counts are summed.
    Count,
    Sum,
    Min,
    Max,
    /// AVG is sent as SUM in this column and COUNT in `count_col`.
    Avg {
        count_col: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aggregate {
    pub col: usize,
    pub func: AggFunc,
}

/// Comparison operators HAVING may use at the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// `col <op> literal`, all conditions ANDed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HavingCond {
    pub col: usize,
    pub op: CmpOp,
    pub value: Vec<u8>,
}

/// What the gateway must do with the shards' rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeSpec {
    pub order_by: Vec<SortKey>,
    pub limit: Option<u64>,
    pub offset: u64,
    pub group_by: Vec<usize>,
    pub aggregates: Vec<Aggregate>,
    pub having: Vec<HavingCond>,
    pub distinct: bool,
    /// Columns the client sees: the first `visible`; `None` = all.
    pub visible: Option<usize>,
    /// Output names replacing the shard's, by column (for rewritten expressions).
    pub names: Vec<(usize, String)>,
    /// Hidden columns that follow a `*`: their indexes (from [`HIDDEN_BASE`]) are resolved
    /// once the shards' column count is known.
    pub trailing_hidden: usize,
}

impl MergeSpec {
    /// Renumbers every column reference.
    pub fn remap_columns(&mut self, f: &dyn Fn(usize) -> usize) {
        for k in &mut self.order_by {
            k.col = f(k.col);
        }
        for c in &mut self.group_by {
            *c = f(*c);
        }
        for a in &mut self.aggregates {
            a.col = f(a.col);
            if let AggFunc::Avg { count_col } = &mut a.func {
                *count_col = f(*count_col);
            }
        }
        for h in &mut self.having {
            h.col = f(h.col);
        }
        for (c, _) in &mut self.names {
            *c = f(*c);
        }
    }

    /// Places hidden columns that follow a `*` now that the row width is known.
    fn resolve_trailing_hidden(&mut self, columns: usize) {
        if self.trailing_hidden == 0 {
            return;
        }
        let first = columns.saturating_sub(self.trailing_hidden);
        self.remap_columns(&|c| {
            if c >= HIDDEN_BASE {
                first + (c - HIDDEN_BASE)
            } else {
                c
            }
        });
        self.visible = Some(first);
        self.trailing_hidden = 0;
    }

    fn is_grouped(&self) -> bool {
        !self.group_by.is_empty()
            || !self.aggregates.is_empty()
            || self.distinct
            || !self.having.is_empty()
    }

    /// Nothing to do but concatenate in shard order?
    pub fn is_passthrough(&self) -> bool {
        !self.is_grouped()
            && self.order_by.is_empty()
            && self.limit.is_none()
            && self.offset == 0
            && self.visible.is_none()
            && self.trailing_hidden == 0
    }
}

type Cells = Vec<Option<Vec<u8>>>;

#[derive(Debug)]
struct Group {
    first: Cells,
    accs: Vec<Acc>,
}

#[derive(Clone, Debug)]
enum Acc {
    Count(i128),
    Sum(Option<Decimal>, Option<f64>),
    Extreme(Option<Vec<u8>>),
    Avg {
        sum: Option<Decimal>,
        fsum: Option<f64>,
        count: i128,
    },
}

/// Merges shard results; see the module docs.
#[derive(Debug)]
pub struct Merger {
    spec: MergeSpec,
    columns: Vec<ColumnDef>,
    orders: Vec<CellOrder>,
    queues: Vec<VecDeque<Bytes>>,
    done: Vec<bool>,
    /// Concat mode: the shard currently streaming.
    current: usize,
    groups: BTreeMap<Vec<Vec<u8>>, Group>,
    group_order: Vec<Vec<Vec<u8>>>,
    /// Grouped mode: final rows, once every shard is done.
    output: VecDeque<Bytes>,
    grouped_ready: bool,
    skipped: u64,
    emitted: u64,
    error: Option<String>,
}

impl Merger {
    pub fn new(spec: MergeSpec, shards: usize) -> Merger {
        Merger {
            spec,
            columns: Vec::new(),
            orders: Vec::new(),
            queues: vec![VecDeque::new(); shards],
            done: vec![false; shards],
            current: 0,
            groups: BTreeMap::new(),
            group_order: Vec::new(),
            output: VecDeque::new(),
            grouped_ready: false,
            skipped: 0,
            emitted: 0,
            error: None,
        }
    }

    /// A shard's column definitions. Returns the client's columns the first time.
    pub fn columns(&mut self, _shard: usize, cols: &[ColumnDef]) -> Option<Vec<ColumnDef>> {
        if !self.columns.is_empty() {
            return None;
        }
        self.spec.resolve_trailing_hidden(cols.len());
        self.columns = cols.to_vec();
        self.orders = cols.iter().map(CellOrder::of).collect();
        let mut out: Vec<ColumnDef> = cols.to_vec();
        for a in &self.spec.aggregates {
            if let (AggFunc::Avg { .. }, Some(c)) = (a.func, out.get_mut(a.col)) {
                if !matches!(c.col_type, ColumnType::Double | ColumnType::Float) {
                    c.col_type = ColumnType::NewDecimal;
                    c.decimals = c.decimals.saturating_add(4).min(30);
                }
            }
        }
        for (i, name) in &self.spec.names {
            if let Some(c) = out.get_mut(*i) {
                c.name = name.clone();
            }
        }
        if let Some(v) = self.spec.visible {
            out.truncate(v);
        }
        Some(out)
    }

    /// One row from a shard.
    pub fn row(&mut self, shard: usize, row: Bytes) {
        if self.spec.is_grouped() {
            self.accumulate(&row);
        } else if let Some(q) = self.queues.get_mut(shard) {
            q.push_back(row);
        }
    }

    /// A shard finished its result.
    pub fn done(&mut self, shard: usize) {
        if let Some(d) = self.done.get_mut(shard) {
            *d = true;
        }
        if self.spec.is_grouped() && self.done.iter().all(|d| *d) && !self.grouped_ready {
            self.finish_groups();
        }
    }

    /// Rows waiting in shard `shard`'s queue (the driver stops reading a shard that is far
    /// ahead of the others: bounded memory for streaming merges).
    pub fn queued(&self, shard: usize) -> usize {
        self.queues.get(shard).map_or(0, |q| q.len())
    }

    /// A problem found while merging (e.g. a malformed row), to be sent as an error.
    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    /// Has the LIMIT been satisfied (remaining shard rows can be discarded)?
    pub fn limit_reached(&self) -> bool {
        self.spec.limit.is_some_and(|l| self.emitted >= l)
    }

    /// Is every row out?
    pub fn is_finished(&self) -> bool {
        if self.limit_reached() {
            return true;
        }
        if self.spec.is_grouped() {
            return self.grouped_ready && self.output.is_empty();
        }
        self.done.iter().all(|d| *d) && self.queues.iter().all(|q| q.is_empty())
    }

    /// The next row for the client, if one can leave now.
    pub fn next_row(&mut self) -> Option<Bytes> {
        loop {
            if self.limit_reached() {
                return None;
            }
            let row = if self.spec.is_grouped() {
                self.output.pop_front()?
            } else if self.spec.order_by.is_empty() {
                self.next_concat()?
            } else {
                self.next_ordered()?
            };
            if self.skipped < self.spec.offset {
                self.skipped += 1;
                continue;
            }
            self.emitted += 1;
            return Some(self.visible_part(row));
        }
    }

    fn next_concat(&mut self) -> Option<Bytes> {
        while self.current < self.queues.len() {
            if let Some(r) = self.queues[self.current].pop_front() {
                return Some(r);
            }
            if !self.done[self.current] {
                return None;
            }
            self.current += 1;
        }
        None
    }

    fn next_ordered(&mut self) -> Option<Bytes> {
        let mut best: Option<usize> = None;
        for i in 0..self.queues.len() {
            match self.queues[i].front() {
                None if !self.done[i] => return None, // must wait for this shard's next row
                None => {}
                Some(r) => {
                    let better = match best {
                        None => true,
                        Some(b) => self.cmp_rows(r, &self.queues[b][0]) == Ordering::Less,
                    };
                    if better {
                        best = Some(i);
                    }
                }
            }
        }
        self.queues[best?].pop_front()
    }

    /// Compares two rows on the ORDER BY keys, reading only the key cells (no allocation).
    fn cmp_rows(&self, a: &[u8], b: &[u8]) -> Ordering {
        for k in &self.spec.order_by {
            let x = cell_at(a, k.col);
            let y = cell_at(b, k.col);
            let o = compare_cells(
                x,
                y,
                self.orders.get(k.col).copied().unwrap_or(CellOrder::Binary),
            );
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    fn visible_part(&self, row: Bytes) -> Bytes {
        let Some(v) = self.spec.visible else {
            return row;
        };
        let mut r = TextRow::new(&row);
        for _ in 0..v {
            if !matches!(r.next(), Ok(Some(_))) {
                return row;
            }
        }
        let end = row.len() - r.remaining();
        row.slice(..end)
    }

    fn group_key(&self, c: &Cells) -> Vec<Vec<u8>> {
        let cols: Vec<usize> = if self.spec.group_by.is_empty() && self.spec.aggregates.is_empty() {
            // DISTINCT without GROUP BY: every visible column.
            (0..self.spec.visible.unwrap_or(c.len()).min(c.len())).collect()
        } else {
            self.spec.group_by.clone()
        };
        cols.iter()
            .map(|&i| match c.get(i).and_then(|x| x.as_deref()) {
                None => vec![0u8],
                Some(v) => {
                    let mut k = vec![1u8];
                    match self.orders.get(i) {
                        Some(CellOrder::Text) => k.extend(super::compare::fold_text(v)),
                        Some(CellOrder::Numeric) => match Decimal::parse(v) {
                            Some(d) => k.extend(d.to_text().into_bytes()),
                            None => k.extend_from_slice(v),
                        },
                        _ => k.extend_from_slice(v),
                    }
                    k
                }
            })
            .collect()
    }

    fn accumulate(&mut self, row: &[u8]) {
        let c = cells(row);
        let key = self.group_key(&c);
        if !self.groups.contains_key(&key) {
            let accs = self
                .spec
                .aggregates
                .iter()
                .map(|a| match a.func {
                    AggFunc::Count => Acc::Count(0),
                    AggFunc::Sum => Acc::Sum(None, None),
                    AggFunc::Min | AggFunc::Max => Acc::Extreme(None),
                    AggFunc::Avg { .. } => Acc::Avg {
                        sum: None,
                        fsum: None,
                        count: 0,
                    },
                })
                .collect();
            self.group_order.push(key.clone());
            self.groups.insert(
                key.clone(),
                Group {
                    first: c.clone(),
                    accs,
                },
            );
        }
        let orders = self.orders.clone();
        let aggs = self.spec.aggregates.clone();
        let Some(g) = self.groups.get_mut(&key) else {
            return;
        };
        for (a, acc) in aggs.iter().zip(g.accs.iter_mut()) {
            let v = c.get(a.col).and_then(|x| x.as_deref());
            match (acc, a.func) {
                (Acc::Count(n), _) => *n += v.and_then(Decimal::parse).map_or(0, |d| d.mantissa),
                (Acc::Sum(d, f), _) => add_number(d, f, v),
                (Acc::Extreme(cur), func) => {
                    if let Some(v) = v {
                        let order = orders.get(a.col).copied().unwrap_or(CellOrder::Binary);
                        let replace = match cur {
                            None => true,
                            Some(old) => {
                                let o = compare_cells(Some(v), Some(old), order);
                                if func == AggFunc::Min {
                                    o == Ordering::Less
                                } else {
                                    o == Ordering::Greater
                                }
                            }
                        };
                        if replace {
                            *cur = Some(v.to_vec());
                        }
                    }
                }
                (Acc::Avg { sum, fsum, count }, AggFunc::Avg { count_col }) => {
                    add_number(sum, fsum, v);
                    *count += c
                        .get(count_col)
                        .and_then(|x| x.as_deref())
                        .and_then(Decimal::parse)
                        .map_or(0, |d| d.mantissa);
                }
                _ => {}
            }
        }
    }

    fn finish_groups(&mut self) {
        self.grouped_ready = true;
        // Scalar aggregates over no rows at all still give one row (COUNT 0, others NULL).
        if self.groups.is_empty()
            && self.spec.group_by.is_empty()
            && !self.spec.aggregates.is_empty()
        {
            let width = self.columns.len();
            let mut first: Cells = vec![None; width];
            for a in &self.spec.aggregates {
                if a.func == AggFunc::Count {
                    if let Some(x) = first.get_mut(a.col) {
                        *x = Some(b"0".to_vec());
                    }
                }
            }
            self.output.push_back(encode(&first));
            return;
        }
        let mut rows: Vec<Cells> = Vec::with_capacity(self.groups.len());
        let keys: Vec<Vec<Vec<u8>>> = if self.spec.order_by.is_empty() {
            // MariaDB returns groups in group-key order; keep that (deterministic).
            self.groups.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.group_order)
        };
        for k in keys {
            let Some(g) = self.groups.remove(&k) else {
                continue;
            };
            let mut row = g.first;
            for (a, acc) in self.spec.aggregates.iter().zip(g.accs) {
                let scale = self.columns.get(a.col).map_or(0, |c| c.decimals as u32);
                let is_float = self
                    .columns
                    .get(a.col)
                    .is_some_and(|c| matches!(c.col_type, ColumnType::Double | ColumnType::Float));
                let v = match acc {
                    Acc::Count(n) => Some(n.to_string().into_bytes()),
                    Acc::Sum(d, f) => number_text(d, f),
                    Acc::Extreme(v) => v,
                    Acc::Avg { sum, fsum, count } => {
                        avg_text(sum, fsum, count, scale.min(26) + 4, is_float)
                    }
                };
                if let Some(x) = row.get_mut(a.col) {
                    *x = v;
                }
            }
            if self.having_holds(&row) {
                rows.push(row);
            }
        }
        if !self.spec.order_by.is_empty() {
            let spec = self.spec.order_by.clone();
            let orders = self.orders.clone();
            rows.sort_by(|a, b| {
                for k in &spec {
                    let o = compare_cells(
                        a.get(k.col).and_then(|c| c.as_deref()),
                        b.get(k.col).and_then(|c| c.as_deref()),
                        orders.get(k.col).copied().unwrap_or(CellOrder::Binary),
                    );
                    let o = if k.desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        self.output = rows.iter().map(encode).collect();
    }

    fn having_holds(&self, row: &Cells) -> bool {
        self.spec.having.iter().all(|h| {
            let v = row.get(h.col).and_then(|c| c.as_deref());
            let Some(v) = v else { return false };
            let order = self.orders.get(h.col).copied().unwrap_or(CellOrder::Binary);
            let o = compare_cells(Some(v), Some(&h.value), order);
            match h.op {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::NotEq => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::LtEq => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::GtEq => o != Ordering::Less,
            }
        })
    }
}

fn add_number(d: &mut Option<Decimal>, f: &mut Option<f64>, v: Option<&[u8]>) {
    let Some(v) = v else { return };
    match Decimal::parse(v) {
        Some(x) if f.is_none() => {
            *d = Some(match *d {
                None => x,
                Some(cur) => match cur.checked_add(x) {
                    Some(s) => s,
                    None => {
                        *f = Some(to_f64(cur) + to_f64(x));
                        return;
                    }
                },
            });
        }
        _ => {
            let x = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            let base = f.unwrap_or_else(|| d.map_or(0.0, to_f64));
            *f = Some(base + x);
            *d = None;
        }
    }
}

fn to_f64(d: Decimal) -> f64 {
    d.mantissa as f64 / 10f64.powi(d.scale as i32)
}

fn number_text(d: Option<Decimal>, f: Option<f64>) -> Option<Vec<u8>> {
    match (d, f) {
        (_, Some(x)) => Some(crate::wire::Value::Double(x).to_text()?.into_bytes()),
        (Some(d), None) => Some(d.to_text().into_bytes()),
        (None, None) => None,
    }
}

fn avg_text(
    sum: Option<Decimal>,
    fsum: Option<f64>,
    count: i128,
    scale: u32,
    is_float: bool,
) -> Option<Vec<u8>> {
    if count == 0 {
        return None;
    }
    match (sum, fsum) {
        (Some(s), None) if !is_float => s.div_int(count, scale).map(|d| d.to_text().into_bytes()),
        (s, f) => {
            let total = f.unwrap_or_else(|| s.map_or(0.0, to_f64));
            Some(
                crate::wire::Value::Double(total / count as f64)
                    .to_text()?
                    .into_bytes(),
            )
        }
    }
}

/// Cell `col` of a text row, borrowed (`None` for NULL or a missing cell).
fn cell_at(row: &[u8], col: usize) -> Option<&[u8]> {
    let mut r = TextRow::new(row);
    for _ in 0..col {
        r.next().ok().flatten()?;
    }
    r.next().ok().flatten().flatten()
}

/// Decodes a text row into owned cells (grouped mode only).
fn cells(row: &[u8]) -> Cells {
    let mut r = TextRow::new(row);
    let mut out = Vec::new();
    while let Ok(Some(c)) = r.next() {
        out.push(c.map(<[u8]>::to_vec));
    }
    out
}

fn encode(c: &Cells) -> Bytes {
    let mut b = BytesMut::new();
    for cell in c {
        match cell {
            None => b.extend_from_slice(&[0xfb]),
            Some(v) => put_lenenc_str(&mut b, v),
        }
    }
    b.freeze()
}

#[cfg(test)]
mod tests;
