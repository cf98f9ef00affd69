use super::*;
use crate::wire::value::put_text_row;
use crate::wire::Value;

fn cols(types: &[(&str, ColumnType)]) -> Vec<ColumnDef> {
    types.iter().map(|(n, t)| ColumnDef::new(*n, *t)).collect()
}

fn row(cells: &[Option<&str>]) -> Bytes {
    let vals: Vec<Value> = cells
        .iter()
        .map(|c| c.map_or(Value::Null, Value::text))
        .collect();
    let mut out = BytesMut::new();
    put_text_row(&mut out, &vals, &mut Vec::new());
    out.freeze()
}

fn text(r: &Bytes) -> String {
    let mut t = TextRow::new(r);
    let mut out = Vec::new();
    while let Ok(Some(c)) = t.next() {
        out.push(c.map_or("NULL".to_string(), |b| {
            String::from_utf8_lossy(b).into_owned()
        }));
    }
    out.join(",")
}

fn drain(m: &mut Merger) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(r) = m.next_row() {
        v.push(text(&r));
    }
    v
}

#[test]
fn concat_keeps_shard_order_and_streams() {
    let mut m = Merger::new(MergeSpec::default(), 2);
    let c = cols(&[("id", ColumnType::LongLong)]);
    assert!(m.columns(0, &c).is_some());
    assert!(m.columns(1, &c).is_none());
    m.row(1, row(&[Some("9")]));
    m.row(0, row(&[Some("1")]));
    assert_eq!(drain(&mut m), ["1"], "shard 1 waits until shard 0 is done");
    m.done(0);
    assert_eq!(drain(&mut m), ["9"]);
    m.done(1);
    assert!(m.is_finished());
}

#[test]
fn ordered_merge_with_offset_and_limit() {
    let spec = MergeSpec {
        order_by: vec![SortKey {
            col: 0,
            desc: false,
        }],
        limit: Some(3),
        offset: 1,
        ..Default::default()
    };
    let mut m = Merger::new(spec, 3);
    m.columns(0, &cols(&[("id", ColumnType::LongLong)]));
    for (s, vals) in [
        (0, ["1", "4", "7"]),
        (1, ["2", "5", "8"]),
        (2, ["3", "6", "10"]),
    ] {
        for v in vals {
            m.row(s, row(&[Some(v)]));
        }
    }
    // Shards 0-2 have rows but are not done: the merge can still proceed while each has a head.
    assert_eq!(drain(&mut m), ["2", "3", "4"]);
    assert!(m.limit_reached());
    assert!(m.is_finished());
}

#[test]
fn ordered_merge_waits_for_every_unfinished_shard() {
    let spec = MergeSpec {
        order_by: vec![SortKey { col: 0, desc: true }],
        ..Default::default()
    };
    let mut m = Merger::new(spec, 2);
    m.columns(0, &cols(&[("name", ColumnType::VarString)]));
    m.row(0, row(&[Some("b")]));
    assert_eq!(drain(&mut m), Vec::<String>::new());
    m.row(1, row(&[Some("C")]));
    assert_eq!(drain(&mut m), ["C"]);
    m.done(1);
    assert_eq!(drain(&mut m), ["b"]);
}

#[test]
fn aggregates_merge_across_shards() {
    // select k, count(*), sum(v), min(v), max(v), avg(v) [sum, count hidden] group by k
    let spec = MergeSpec {
        group_by: vec![0],
        aggregates: vec![
            Aggregate {
                col: 1,
                func: AggFunc::Count,
            },
            Aggregate {
                col: 2,
                func: AggFunc::Sum,
            },
            Aggregate {
                col: 3,
                func: AggFunc::Min,
            },
            Aggregate {
                col: 4,
                func: AggFunc::Max,
            },
            Aggregate {
                col: 5,
                func: AggFunc::Avg { count_col: 6 },
            },
        ],
        visible: Some(6),
        order_by: vec![SortKey { col: 1, desc: true }],
        ..Default::default()
    };
    let mut m = Merger::new(spec, 2);
    let c = cols(&[
        ("k", ColumnType::VarString),
        ("count(*)", ColumnType::LongLong),
        ("sum(v)", ColumnType::NewDecimal),
        ("min(v)", ColumnType::Long),
        ("max(v)", ColumnType::Long),
        ("avg(v)", ColumnType::NewDecimal),
        ("count(v)", ColumnType::LongLong),
    ]);
    let out = m.columns(0, &c).unwrap();
    assert_eq!(out.len(), 6);
    assert_eq!(out[5].decimals, 4);
    m.row(
        0,
        row(&[
            Some("a"),
            Some("2"),
            Some("3"),
            Some("1"),
            Some("2"),
            Some("3"),
            Some("2"),
        ]),
    );
    m.row(
        0,
        row(&[
            Some("b"),
            Some("1"),
            Some("10"),
            Some("10"),
            Some("10"),
            Some("10"),
            Some("1"),
        ]),
    );
    m.row(
        1,
        row(&[
            Some("A"),
            Some("1"),
            Some("4"),
            Some("4"),
            Some("4"),
            Some("4"),
            Some("1"),
        ]),
    );
    m.done(0);
    assert_eq!(
        drain(&mut m),
        Vec::<String>::new(),
        "grouped results wait for every shard"
    );
    m.done(1);
    assert_eq!(drain(&mut m), ["a,3,7,1,4,2.3333", "b,1,10,10,10,10.0000"]);
}

#[test]
fn scalar_count_over_no_rows_is_zero_and_having_filters() {
    let spec = MergeSpec {
        aggregates: vec![Aggregate {
            col: 0,
            func: AggFunc::Count,
        }],
        ..Default::default()
    };
    let mut m = Merger::new(spec, 2);
    m.columns(0, &cols(&[("count(*)", ColumnType::LongLong)]));
    m.row(0, row(&[Some("0")]));
    m.row(1, row(&[Some("5")]));
    m.done(0);
    m.done(1);
    assert_eq!(drain(&mut m), ["5"]);

    let spec = MergeSpec {
        group_by: vec![0],
        aggregates: vec![Aggregate {
            col: 1,
            func: AggFunc::Count,
        }],
        having: vec![HavingCond {
            col: 1,
            op: CmpOp::Gt,
            value: b"1".to_vec(),
        }],
        ..Default::default()
    };
    let mut m = Merger::new(spec, 2);
    m.columns(
        0,
        &cols(&[("k", ColumnType::Long), ("c", ColumnType::LongLong)]),
    );
    m.row(0, row(&[Some("1"), Some("1")]));
    m.row(1, row(&[Some("1"), Some("1")]));
    m.row(1, row(&[Some("2"), Some("1")]));
    m.done(0);
    m.done(1);
    assert_eq!(drain(&mut m), ["1,2"]);
}

#[test]
fn distinct_dedupes_case_insensitively() {
    let spec = MergeSpec {
        distinct: true,
        ..Default::default()
    };
    let mut m = Merger::new(spec, 2);
    m.columns(0, &cols(&[("n", ColumnType::VarString)]));
    m.row(0, row(&[Some("x")]));
    m.row(1, row(&[Some("X")]));
    m.row(1, row(&[None]));
    m.done(0);
    m.done(1);
    assert_eq!(drain(&mut m), ["NULL", "x"]);
}

#[test]
fn hidden_columns_are_sliced_off() {
    let spec = MergeSpec {
        order_by: vec![SortKey {
            col: 1,
            desc: false,
        }],
        visible: Some(1),
        ..Default::default()
    };
    let mut m = Merger::new(spec, 1);
    let out = m
        .columns(
            0,
            &cols(&[("a", ColumnType::VarString), ("b", ColumnType::Long)]),
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    m.row(0, row(&[Some("hello"), Some("1")]));
    m.done(0);
    assert_eq!(drain(&mut m), ["hello"]);
}
