//! Smoke tests of the planner on the embedded default vschema; the full case list lives in
//! `scenarios/plans/` with snapshots.

use super::*;
use crate::gateway::{Gateway, Topology};
use crate::server::ServerConfig;

pub(crate) fn default_gateway() -> Arc<Gateway> {
    let topology = Topology::embedded(crate::vschema::DEFAULT_SHARDS, "commerce");
    Gateway::with_vschema(
        ServerConfig::default(),
        topology,
        crate::vschema::default_vschema(),
    )
    .unwrap()
}

fn explain_sql(sql: &str) -> String {
    let gw = default_gateway();
    match plan_sql(sql, &gw, &Target::default()) {
        Ok(p) => {
            let b = Bindings {
                original: sql,
                literals: &p.literals,
                join_values: &[],
            };
            explain(&p.plan, &b, &gw.topology, &|ks| {
                gw.shard_maps.get(ks).cloned()
            })
        }
        Err(e) => format!("{e}"),
    }
}

#[test]
fn point_select_goes_to_one_shard() {
    let e = explain_sql("select * from customer where customer_id = 1");
    assert!(e.starts_with("Route EqualUnique keyspace=commerce"), "{e}");
    assert!(
        e.contains("shard commerce/-80  (hash(1) = 166b40b44aba4bd6)"),
        "{e}"
    );
    assert!(
        e.contains("select * from customer where customer_id = 1"),
        "{e}"
    );
}

#[test]
fn in_list_is_pruned_per_shard() {
    let e = explain_sql("select * from customer where customer_id in (1, 2, 3, 4)");
    assert!(e.starts_with("Route IN"), "{e}");
    assert_eq!(e.matches("shard commerce/").count(), 2, "{e}");
}

#[test]
fn scatter_with_order_and_limit_rewrites() {
    let e = explain_sql("select name from customer order by name desc limit 2 offset 3");
    assert!(e.contains("LIMIT 5"), "{e}");
    assert!(
        e.contains("merge: order by col0 desc; limit 2 offset 3"),
        "{e}"
    );
}

#[test]
fn reference_writes_without_source_are_1173() {
    let e = explain_sql("insert into product (pid, name) values (1, 'x')");
    assert!(e.starts_with("ERROR 1173 (42000)"), "{e}");
}

#[test]
fn inserts_split_per_shard_and_use_the_sequence() {
    let e = explain_sql(
        "insert into corder (order_id, customer_id, total) values (1, 1, 10), (2, 4, 20)",
    );
    assert!(
        e.starts_with("Insert keyspace=commerce table=corder"),
        "{e}"
    );
    assert_eq!(e.matches("shard commerce/").count(), 2, "{e}");
    let e = explain_sql("insert into customer (name) values ('a')");
    assert!(e.contains("sequence=lookup.customer_seq"), "{e}");
}

#[test]
fn cache_hits_share_a_plan() {
    let gw = default_gateway();
    let t = Target::default();
    plan_sql("select * from customer where customer_id = 1", &gw, &t).unwrap();
    plan_sql("select * from customer where customer_id = 99", &gw, &t).unwrap();
    let s = gw.plans.stats();
    assert_eq!((s.hits, s.misses), (1, 1));
}

/// The parts of a cross-shard join plan that must hold whatever the snapshot says.
#[test]
fn cross_shard_join_binds_left_columns_and_routes_the_right_side_by_its_vindex() {
    let gw = default_gateway();
    let sql = "select o.order_id, c.name from corder o join customer c on c.customer_id = o.buyer_id where o.total > 5 order by c.name limit 3";
    let p = plan_sql(sql, &gw, &Target::default()).unwrap();
    let Plan::Join(j) = p.plan.as_ref() else {
        panic!("not a join: {:?}", p.plan.kind())
    };
    assert_eq!(j.kind, JoinKind::Inner);
    assert_eq!(j.left.opcode, Opcode::Scatter);
    // The right side reaches one shard per left row: `customer_id = :v0` on its vindex.
    assert_eq!(j.right.opcode, Opcode::EqualUnique);
    assert_eq!(j.right.values, vec![ValueRef::Param(JOIN_VAR_BASE)]);
    assert_eq!(j.var_names, vec!["o.buyer_id".to_string()]);
    assert_eq!(j.columns[..j.visible], [(Side::Left, 0), (Side::Right, 0)]);
    assert_eq!(j.order_by, vec![(1, false)]);
    assert!(j.limit.is_some());
    // The left query carries the WHERE on its table and fetches the bound column.
    let ShardSql::Template(left) = &j.left.sql else {
        panic!("left side without a template")
    };
    let left = left.to_string();
    assert!(
        left.contains("o.buyer_id") && left.contains("o.total > "),
        "{left}"
    );
    assert!(!left.to_ascii_lowercase().contains("customer"), "{left}");
    // One left row's values bound: the right SQL and its shard.
    let values = [JoinValue {
        value: Value::Int(4),
        numeric: true,
    }];
    let b = Bindings {
        original: sql,
        literals: &p.literals,
        join_values: &values,
    };
    let map = gw.shard_maps.get("commerce").unwrap();
    let q = j.right.resolve(&b, map).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].shard, 1, "hash(4) is on 80-");
    assert!(
        q[0].sql.ends_with("WHERE c.customer_id = 4"),
        "{}",
        q[0].sql
    );
}

#[test]
fn join_values_are_quoted_by_type_and_null_stays_null() {
    let values = [
        JoinValue {
            value: Value::text("it's"),
            numeric: false,
        },
        JoinValue {
            value: Value::text("9.99"),
            numeric: true,
        },
        JoinValue {
            value: Value::Null,
            numeric: false,
        },
    ];
    let b = Bindings {
        original: "",
        literals: &[],
        join_values: &values,
    };
    let stmt =
        crate::sql::parse_one("select 1 from t where a = :v0 and b = :v1 and c <=> :v2").unwrap();
    assert_eq!(
        b.render(&stmt).unwrap(),
        "SELECT 1 FROM t WHERE a = 'it''s' AND b = 9.99 AND c <=> NULL"
    );
}

#[test]
fn group_concat_over_a_cross_shard_join_is_refused_with_1235() {
    let e =
        explain_sql("select group_concat(o.note) from customer c join corder o on c.name = o.note");
    assert!(e.contains("over a cross-shard join"), "{e}");
    assert!(e.contains("1235"), "{e}");
}
