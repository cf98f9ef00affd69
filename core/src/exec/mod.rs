//! Scatter execution at the gateway: merging shard results (ordering, limits, aggregates)
//! and the arithmetic and collation rules that merging needs.

pub mod compare;
pub mod join;
pub mod merge;
pub mod ok_info;

pub use merge::{AggFunc, Aggregate, CmpOp, HavingCond, MergeSpec, Merger, SortKey};
