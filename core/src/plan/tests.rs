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
