//! The gateway's nested-loop join ([`crate::plan::JoinPlan`]): what happens to the rows. The
//! session sends the queries; this module is pure and sees only column definitions and rows.
//!
//! # The order of calls
//! 1. [`Joiner::left_columns`], then [`Joiner::left_row`] for every left row (the left side
//!    runs once, first, and is **buffered**);
//! 2. then, while [`Joiner::next_probe`] gives the join values of the next left row: run the
//!    right side with them, feeding [`Joiner::right_columns`], [`Joiner::right_row`] and
//!    finally [`Joiner::probe_done`]; if the left side had no rows, the session sends the
//!    right side's "fields" query once and feeds only [`Joiner::right_columns`];
//! 3. [`Joiner::finish`]; rows leave through [`Joiner::next_row`] at any point after
//!    [`Joiner::output_columns`] is known.
//!
//! # Why the left side is buffered, and the right side runs once per left row
//! The left and right queries may go to the same shard, and a session has one connection per
//! shard (inside a transaction they must share it, to see the transaction's writes): a right
//! query cannot start on a connection that is still streaming the left result. So the left
//! result is read to the end first, holding at most `max_buffered_rows` rows (the OLTP row cap,
//! in either workload); a larger left side ends the statement with ERR 1235.
//!
//! The right side runs once per left row, with that row's values bound as literals, rather
//! than once per batch with an `IN (…)` list: the shard itself then applies MySQL's comparison
//! rules (collations, numbers against strings, NULL), any ON condition works (not only
//! equalities), and no right rows need matching back at the gateway; memory beyond the left
//! buffer is one right row at a time. The cost is one round trip per left row (to one shard
//! when the join column is the right table's vindex), which the OLTP row cap bounds.
//!
//! Joined rows stream out in left-row order, and for one left row in the right side's shard
//! order — deterministic. With ORDER BY every joined row is buffered (same cap), sorted
//! (stable) when the last probe is done, then OFFSET and LIMIT apply; without ORDER BY, LIMIT
//! stops the probing as soon as it is satisfied. Aggregates, GROUP BY and DISTINCT over a join
//! feed these rows (all columns) to the ordinary [`super::Merger`] as one shard.

use super::compare::{compare_cells, CellOrder};
use crate::error::codes;
use crate::plan::{JoinKind, JoinValue, Side};
use crate::wire::codec::put_lenenc_str;
use crate::wire::consts::flag;
use crate::wire::value::TextRow;
use crate::wire::{ColumnDef, Value};
use crate::SqlError;
use bytes::{Bytes, BytesMut};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::Range;

type Cells = Vec<Option<Bytes>>;

/// A [`crate::plan::JoinPlan`] bound for one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinShape {
    pub kind: JoinKind,
    /// Per side, per select item: a `*` (any width) rather than one column?
    pub left_items: Vec<bool>,
    pub right_items: Vec<bool>,
    /// Join variable N is left item `vars[N]`.
    pub vars: Vec<usize>,
    /// Output columns (side, item); the first `visible` are the client's.
    pub columns: Vec<(Side, usize)>,
    pub visible: usize,
    /// (index into `columns`, descending).
    pub order_by: Vec<(usize, bool)>,
    /// `right.col IS [NOT] NULL` after a LEFT JOIN: (index into `columns`, true: IS NULL).
    pub filters: Vec<(usize, bool)>,
    pub limit: Option<u64>,
    pub offset: u64,
    /// Most rows held at once: the left side, and the joined rows before an ORDER BY.
    pub max_buffered_rows: u64,
}

/// The join's row state; see the module docs for the calling order.
#[derive(Debug)]
pub struct Joiner {
    shape: JoinShape,
    left_defs: Option<Vec<ColumnDef>>,
    left_layout: Vec<Range<usize>>,
    right_defs: Option<Vec<ColumnDef>>,
    right_layout: Vec<Range<usize>>,
    left_rows: VecDeque<Cells>,
    /// The left row being probed, and whether a right row matched it.
    current: Option<(Cells, bool)>,
    /// ORDER BY: every joined row (visible and sort columns) until the end.
    sorted: Vec<Cells>,
    ready: VecDeque<Bytes>,
    skipped: u64,
    emitted: u64,
}

/// Where each select item's columns are in a side's row: `*` takes what the others leave.
fn layout(items: &[bool], columns: usize, side: &str) -> Result<Vec<Range<usize>>, SqlError> {
    let fixed = items.iter().filter(|w| !**w).count();
    let wide = columns.checked_sub(fixed).filter(|w| {
        let wild = items.iter().any(|x| *x);
        if wild {
            true
        } else {
            *w == 0
        }
    });
    let Some(wide) = wide else {
        return Err(SqlError::internal(format!(
            "the {side} side of the join returned {columns} columns for {} select items",
            items.len()
        )));
    };
    let mut at = 0;
    Ok(items
        .iter()
        .map(|w| {
            let n = if *w { wide } else { 1 };
            at += n;
            at - n..at
        })
        .collect())
}

fn decode(row: &[u8]) -> Result<Cells, SqlError> {
    let mut r = TextRow::new(row);
    let mut out = Vec::new();
    loop {
        match r.next() {
            Ok(Some(c)) => out.push(c.map(Bytes::copy_from_slice)),
            Ok(None) => return Ok(out),
            Err(_) => return Err(SqlError::internal("malformed row from a shard")),
        }
    }
}

fn encode(cells: &[Option<Bytes>]) -> Bytes {
    let mut b = BytesMut::new();
    for c in cells {
        match c {
            None => b.extend_from_slice(&[0xfb]),
            Some(v) => put_lenenc_str(&mut b, v),
        }
    }
    b.freeze()
}

fn too_many(cap: u64, what: &str) -> SqlError {
    SqlError::new(
        codes::ER_NOT_SUPPORTED_YET,
        "42000",
        format!(
            "unsupported: cross-shard join buffering more than {cap} rows ({what}); add conditions or a LIMIT to the left side"
        ),
    )
}

impl Joiner {
    pub fn new(shape: JoinShape) -> Joiner {
        Joiner {
            shape,
            left_defs: None,
            left_layout: Vec::new(),
            right_defs: None,
            right_layout: Vec::new(),
            left_rows: VecDeque::new(),
            current: None,
            sorted: Vec::new(),
            ready: VecDeque::new(),
            skipped: 0,
            emitted: 0,
        }
    }

    /// The left side's column definitions (the first shard's; the others are ignored).
    pub fn left_columns(&mut self, defs: &[ColumnDef]) -> Result<(), SqlError> {
        if self.left_defs.is_none() {
            self.left_layout = layout(&self.shape.left_items, defs.len(), "left")?;
            self.left_defs = Some(defs.to_vec());
        }
        Ok(())
    }

    /// One left row, buffered until its probe.
    pub fn left_row(&mut self, row: &[u8]) -> Result<(), SqlError> {
        if self.left_rows.len() as u64 >= self.shape.max_buffered_rows {
            return Err(too_many(self.shape.max_buffered_rows, "its left side"));
        }
        self.left_rows.push_back(decode(row)?);
        Ok(())
    }

    /// Moves to the next left row and returns its join values; `None` when every left row is
    /// probed, or a LIMIT without ORDER BY is already satisfied.
    pub fn next_probe(&mut self) -> Option<Vec<JoinValue>> {
        if self.limit_reached() {
            self.left_rows.clear();
            return None;
        }
        let row = self.left_rows.pop_front()?;
        let defs = self.left_defs.as_deref().unwrap_or(&[]);
        let values = self
            .shape
            .vars
            .iter()
            .map(|&item| {
                let col = self.left_layout.get(item).map_or(usize::MAX, |r| r.start);
                let numeric = defs
                    .get(col)
                    .is_some_and(|d| CellOrder::of(d) == CellOrder::Numeric);
                let value = match row.get(col).cloned().flatten() {
                    None => Value::Null,
                    Some(b) if numeric => std::str::from_utf8(&b)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .map(Value::Int)
                        .unwrap_or(Value::Bytes(b)),
                    Some(b) => Value::Bytes(b),
                };
                JoinValue { value, numeric }
            })
            .collect();
        self.current = Some((row, false));
        Some(values)
    }

    /// Left rows not probed yet.
    pub fn pending_probes(&self) -> usize {
        self.left_rows.len()
    }

    /// The right side's column definitions (the first time they come).
    pub fn right_columns(&mut self, defs: &[ColumnDef]) -> Result<(), SqlError> {
        if self.right_defs.is_none() {
            self.right_layout = layout(&self.shape.right_items, defs.len(), "right")?;
            self.right_defs = Some(defs.to_vec());
        }
        Ok(())
    }

    /// The client's columns, once both sides' definitions are known. A LEFT JOIN's right
    /// columns may be NULL whatever the table says.
    pub fn output_columns(&self) -> Option<Vec<ColumnDef>> {
        let (l, r) = (self.left_defs.as_ref()?, self.right_defs.as_ref()?);
        let mut out = Vec::new();
        for &(side, item) in &self.shape.columns[..self.shape.visible] {
            let (defs, range) = match side {
                Side::Left => (l, self.left_layout.get(item)?),
                Side::Right => (r, self.right_layout.get(item)?),
            };
            for d in defs.get(range.clone())? {
                let mut d = d.clone();
                if side == Side::Right && self.shape.kind == JoinKind::Left {
                    d.flags &= !flag::NOT_NULL;
                }
                out.push(d);
            }
        }
        Some(out)
    }

    /// One right row for the current left row.
    pub fn right_row(&mut self, row: &[u8]) -> Result<(), SqlError> {
        let right = decode(row)?;
        let Some((left, _)) = self.current.take() else {
            return Err(SqlError::internal("a right row without a left row"));
        };
        let out = self.compose(&left, Some(&right));
        self.current = Some((left, true));
        self.emit(out)
    }

    /// The right side is done for the current left row: a LEFT JOIN keeps an unmatched left
    /// row with NULL right columns.
    pub fn probe_done(&mut self) -> Result<(), SqlError> {
        if let Some((left, matched)) = self.current.take() {
            if !matched && self.shape.kind == JoinKind::Left {
                let out = self.compose(&left, None);
                self.emit(out)?;
            }
        }
        Ok(())
    }

    /// Every probe is done: sorts the buffered rows and releases them.
    pub fn finish(&mut self) {
        if self.shape.order_by.is_empty() {
            return;
        }
        let mut rows = std::mem::take(&mut self.sorted);
        let (l, r) = (
            self.left_defs.clone().unwrap_or_default(),
            self.right_defs.clone().unwrap_or_default(),
        );
        // Each sort key is one column: its cell index in the composed row and its order.
        let keys: Vec<(usize, CellOrder, bool)> = self
            .shape
            .order_by
            .iter()
            .map(|&(c, desc)| {
                let (side, item) = self
                    .shape
                    .columns
                    .get(c)
                    .copied()
                    .unwrap_or((Side::Left, 0));
                let def = match side {
                    Side::Left => self.left_layout.get(item).and_then(|x| l.get(x.start)),
                    Side::Right => self.right_layout.get(item).and_then(|x| r.get(x.start)),
                };
                let order = def.map_or(CellOrder::Binary, CellOrder::of);
                (self.cell_index(c), order, desc)
            })
            .collect();
        rows.sort_by(|a, b| {
            for &(i, order, desc) in &keys {
                let x = a.get(i).and_then(|c| c.as_deref());
                let y = b.get(i).and_then(|c| c.as_deref());
                let o = compare_cells(x, y, order);
                let o = if desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        for row in rows {
            self.release(row);
        }
    }

    /// The next joined row for the client.
    pub fn next_row(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// A LIMIT is satisfied: no more rows will come.
    pub fn limit_reached(&self) -> bool {
        self.shape.limit.is_some_and(|l| self.emitted >= l)
    }

    /// The first cell of output column `c` in a composed row.
    fn cell_index(&self, c: usize) -> usize {
        self.shape.columns[..c]
            .iter()
            .map(|&(side, item)| self.width(side, item))
            .sum()
    }

    fn width(&self, side: Side, item: usize) -> usize {
        let l = match side {
            Side::Left => &self.left_layout,
            Side::Right => &self.right_layout,
        };
        l.get(item).map_or(1, |r| r.len())
    }

    /// The output row (visible and sort columns) of a left row and a right row (`None`: the
    /// NULL-extended row of a LEFT JOIN).
    fn compose(&self, left: &Cells, right: Option<&Cells>) -> Cells {
        let mut out = Vec::new();
        for &(side, item) in &self.shape.columns {
            let range = match side {
                Side::Left => self.left_layout.get(item),
                Side::Right => self.right_layout.get(item),
            }
            .cloned()
            .unwrap_or(0..0);
            match (side, right) {
                (Side::Left, _) => out.extend(range.map(|i| left.get(i).cloned().flatten())),
                (Side::Right, Some(r)) => out.extend(range.map(|i| r.get(i).cloned().flatten())),
                (Side::Right, None) => out.extend(range.map(|_| None)),
            }
        }
        out
    }

    fn emit(&mut self, row: Cells) -> Result<(), SqlError> {
        for &(c, is_null) in &self.shape.filters {
            let cell = row.get(self.cell_index(c)).cloned().flatten();
            if cell.is_none() != is_null {
                return Ok(());
            }
        }
        if self.shape.order_by.is_empty() {
            self.release(row);
            return Ok(());
        }
        if self.sorted.len() as u64 >= self.shape.max_buffered_rows {
            return Err(too_many(self.shape.max_buffered_rows, "rows to sort"));
        }
        self.sorted.push(row);
        Ok(())
    }

    /// OFFSET and LIMIT, then the visible columns to the client.
    fn release(&mut self, mut row: Cells) {
        if self.limit_reached() {
            return;
        }
        if self.skipped < self.shape.offset {
            self.skipped += 1;
            return;
        }
        self.emitted += 1;
        row.truncate(self.cell_index(self.shape.visible));
        self.ready.push_back(encode(&row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::consts::ColumnType;

    fn shape(kind: JoinKind) -> JoinShape {
        // select l.name, r.total from l join r on r.lid = l.id: left items [name, id],
        // right items [total]; :v0 = l.id.
        JoinShape {
            kind,
            left_items: vec![false, false],
            right_items: vec![false],
            vars: vec![1],
            columns: vec![(Side::Left, 0), (Side::Right, 0)],
            visible: 2,
            order_by: vec![],
            filters: vec![],
            limit: None,
            offset: 0,
            max_buffered_rows: 10,
        }
    }

    fn row(cells: &[Option<&str>]) -> Bytes {
        encode(
            &cells
                .iter()
                .map(|c| c.map(|s| Bytes::copy_from_slice(s.as_bytes())))
                .collect::<Vec<_>>(),
        )
    }

    fn text(b: &Bytes) -> Vec<Option<String>> {
        decode(b)
            .unwrap()
            .into_iter()
            .map(|c| c.map(|x| String::from_utf8_lossy(&x).into_owned()))
            .collect()
    }

    fn left_defs() -> Vec<ColumnDef> {
        vec![
            ColumnDef::new("name", ColumnType::VarString),
            ColumnDef::new("id", ColumnType::LongLong),
        ]
    }

    fn drain(j: &mut Joiner) -> Vec<Vec<Option<String>>> {
        std::iter::from_fn(|| j.next_row())
            .map(|r| text(&r))
            .collect()
    }

    #[test]
    fn inner_join_binds_left_values_and_drops_unmatched_rows() {
        let mut j = Joiner::new(shape(JoinKind::Inner));
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), Some("1")])).unwrap();
        j.left_row(&row(&[Some("b"), Some("2")])).unwrap();
        let v = j.next_probe().unwrap();
        assert_eq!(
            v,
            vec![JoinValue {
                value: Value::Int(1),
                numeric: true
            }]
        );
        j.right_columns(&[ColumnDef::new("total", ColumnType::Long)])
            .unwrap();
        j.right_row(&row(&[Some("10")])).unwrap();
        j.right_row(&row(&[Some("11")])).unwrap();
        j.probe_done().unwrap();
        assert!(j.next_probe().is_some());
        j.probe_done().unwrap();
        assert!(j.next_probe().is_none());
        j.finish();
        let cols = j.output_columns().unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].name, "total");
        assert_eq!(
            drain(&mut j),
            vec![
                vec![Some("a".into()), Some("10".into())],
                vec![Some("a".into()), Some("11".into())]
            ]
        );
    }

    #[test]
    fn left_join_null_extends_and_clears_not_null() {
        let mut j = Joiner::new(shape(JoinKind::Left));
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), None])).unwrap();
        let v = j.next_probe().unwrap();
        assert_eq!(v[0].value, Value::Null);
        let mut total = ColumnDef::new("total", ColumnType::Long);
        total.flags |= flag::NOT_NULL;
        j.right_columns(&[total]).unwrap();
        j.probe_done().unwrap();
        assert!(j.next_probe().is_none());
        j.finish();
        assert_eq!(j.output_columns().unwrap()[1].flags & flag::NOT_NULL, 0);
        assert_eq!(drain(&mut j), vec![vec![Some("a".into()), None]]);
    }

    #[test]
    fn order_by_sorts_after_the_join_then_limits() {
        let mut s = shape(JoinKind::Inner);
        s.order_by = vec![(1, true)];
        s.limit = Some(2);
        s.offset = 1;
        let mut j = Joiner::new(s);
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), Some("1")])).unwrap();
        j.next_probe().unwrap();
        j.right_columns(&[ColumnDef::new("total", ColumnType::Long)])
            .unwrap();
        for t in ["5", "30", "200", "7"] {
            j.right_row(&row(&[Some(t)])).unwrap();
        }
        j.probe_done().unwrap();
        assert!(j.next_row().is_none(), "nothing leaves before the sort");
        j.finish();
        let got: Vec<_> = drain(&mut j).into_iter().map(|r| r[1].clone()).collect();
        assert_eq!(got, vec![Some("30".into()), Some("7".into())]);
    }

    #[test]
    fn limit_without_order_stops_probing() {
        let mut s = shape(JoinKind::Left);
        s.limit = Some(1);
        let mut j = Joiner::new(s);
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), Some("1")])).unwrap();
        j.left_row(&row(&[Some("b"), Some("2")])).unwrap();
        j.next_probe().unwrap();
        j.right_columns(&[ColumnDef::new("total", ColumnType::Long)])
            .unwrap();
        j.probe_done().unwrap();
        assert!(j.limit_reached());
        assert!(j.next_probe().is_none());
    }

    #[test]
    fn is_null_filters_keep_only_unmatched_left_rows() {
        let mut s = shape(JoinKind::Left);
        // WHERE r.total IS NULL: the right column as a hidden output column.
        s.columns.push((Side::Right, 0));
        s.filters = vec![(2, true)];
        let mut j = Joiner::new(s);
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), Some("1")])).unwrap();
        j.left_row(&row(&[Some("b"), Some("2")])).unwrap();
        j.next_probe().unwrap();
        j.right_columns(&[ColumnDef::new("total", ColumnType::Long)])
            .unwrap();
        j.right_row(&row(&[Some("10")])).unwrap();
        j.probe_done().unwrap();
        j.next_probe().unwrap();
        j.probe_done().unwrap();
        j.finish();
        assert_eq!(j.output_columns().unwrap().len(), 2);
        assert_eq!(drain(&mut j), vec![vec![Some("b".into()), None]]);
    }

    #[test]
    fn buffers_are_capped_with_an_error() {
        let mut s = shape(JoinKind::Inner);
        s.max_buffered_rows = 1;
        let mut j = Joiner::new(s);
        j.left_columns(&left_defs()).unwrap();
        j.left_row(&row(&[Some("a"), Some("1")])).unwrap();
        let e = j.left_row(&row(&[Some("b"), Some("2")])).unwrap_err();
        assert_eq!(e.code, 1235);
    }

    #[test]
    fn a_star_takes_the_columns_the_other_items_leave() {
        assert_eq!(
            layout(&[false, true, false], 5, "l").unwrap(),
            vec![0..1, 1..4, 4..5]
        );
        assert!(layout(&[false, false], 3, "l").is_err());
        assert!(layout(&[false, true], 0, "l").is_err());
    }
}
