//! Whole-file tests: the embedded default, the every-error file, table lookup.

use super::*;

const ALL_ERRORS: &str = include_str!("../../../scenarios/vschema/all_errors.json");
const WITH_SOURCE: &str = include_str!("../../../scenarios/vschema/commerce_with_source.json");

#[test]
fn every_validation_error_with_its_path() {
    let got: Vec<(String, String)> = validate_json(ALL_ERRORS)
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect();
    let want: &[(&str, &str)] = &[
        ("keyspaces.shape.sharded", "invalid type: string \"yes\", expected a boolean"),
        ("keyspaces.shape.tables.t.column_vindexes", "invalid type: map, expected a sequence"),
        ("keyspaces.bad.vindexes.lku.params.to", "missing param \"to\", required by vindex type lookup_unique"),
        ("keyspaces.bad.vindexes.nope.type", "unknown vindex type \"hashh\" (known types: binary, binary_md5, consistent_lookup, consistent_lookup_unique, hash, lookup, lookup_hash, lookup_hash_unique, lookup_unique, numeric, reverse_bits, xxhash)"),
        ("keyspaces.bad.vindexes.notype.type", "missing vindex type"),
        ("keyspaces.bad.tables.a_no_vindex.column_vindexes", "table a_no_vindex in sharded keyspace bad has no primary vindex (column_vindexes is empty)"),
        ("keyspaces.bad.tables.b_undefined.column_vindexes[0].name", "vindex \"missing\" is not defined in keyspace bad"),
        ("keyspaces.bad.tables.c_non_unique.column_vindexes[0].name", "primary vindex \"lk\" (type lookup_hash) is not unique"),
        ("keyspaces.bad.tables.d_lookup_primary.column_vindexes[0].name", "primary vindex \"lu\" (type consistent_lookup_unique) is a lookup vindex; shardgate needs a functional primary vindex"),
        ("keyspaces.bad.tables.e_both_columns.column_vindexes[0]", "both column and columns are set; use one"),
        ("keyspaces.bad.tables.f_no_column.column_vindexes[0]", "missing column (or columns)"),
        ("keyspaces.bad.tables.g_two_columns.column_vindexes[0].columns", "vindex \"h\" (type hash) takes 1 column, got 2"),
        ("keyspaces.bad.tables.i_seq_in_sharded.type", "sequence table in sharded keyspace bad; sequence tables must be in an unsharded keyspace"),
        ("keyspaces.bad.tables.j_unknown_type.type", "unknown table type \"view\" (expected \"\", \"reference\" or \"sequence\")"),
        ("keyspaces.bad.tables.k_ref_source_malformed.source", "malformed source \"nodot\": expected \"keyspace.table\""),
        ("keyspaces.bad.tables.l_ref_source_no_keyspace.source", "source \"nowhere.t\": keyspace nowhere does not exist"),
        ("keyspaces.bad.tables.m_ref_source_no_table.source", "source \"plain.nothere\": table nothere does not exist in keyspace plain"),
        ("keyspaces.bad.tables.n_ref_source_same_keyspace.source", "source \"bad.e_both_columns\": must be in another keyspace than the reference table"),
        ("keyspaces.bad.tables.o_ref_source_sharded.source", "source \"other.t\": keyspace other is sharded; a source must be in an unsharded keyspace"),
        ("keyspaces.bad.tables.p_ref_source_not_normal.source", "source \"plain.seq\": is a sequence table, not a normal table"),
        ("keyspaces.bad.tables.q_source_on_normal.source", "source is only allowed on reference tables"),
        ("keyspaces.bad.tables.r_ref_with_vindexes.column_vindexes", "a reference table cannot have column_vindexes"),
        ("keyspaces.bad.tables.s_ai_no_sequence_table.auto_increment.sequence", "sequence table plain.nothere does not exist"),
        ("keyspaces.bad.tables.t_ai_not_a_sequence.auto_increment.sequence", "table plain.t is not a sequence table (its type is \"\", expected \"sequence\")"),
        ("keyspaces.bad.tables.u_ai_unqualified_missing.auto_increment.sequence", "sequence table ghost does not exist in any keyspace"),
        ("keyspaces.bad.tables.v_ai_ambiguous.auto_increment.sequence", "sequence table dup_seq is ambiguous (in keyspaces plain, plain2); write keyspace.table"),
        ("keyspaces.bad.tables.w_ai_no_column.auto_increment.column", "missing column"),
        ("keyspaces.bad.tables.x_ai_no_keyspace.auto_increment.sequence", "sequence \"nowhere.seq\": keyspace nowhere does not exist"),
        ("keyspaces.bad.tables.y_ai_malformed.auto_increment.sequence", "malformed sequence \"a.b.c\": expected \"keyspace.table\" or \"table\""),
        ("keyspaces.bad.tables.z_dup", "duplicate table: \"Z_Dup\" and \"z_dup\" differ only in case"),
        ("keyspaces.plain.tables.with_vindexes.column_vindexes", "column_vindexes in unsharded keyspace plain; only tables of a sharded keyspace have vindexes"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(got, want);
    // Tables `h_broken_vindex` (its vindex's own error is enough) and `zz_ok` are not reported.
    assert!(!got
        .iter()
        .any(|(p, _)| p.contains("h_broken_vindex") || p.contains("zz_ok")));
}

#[test]
fn embedded_default() {
    let vs = parse_vschema(DEFAULT_VSCHEMA_JSON).unwrap();
    assert_eq!(
        vs.keyspaces.keys().collect::<Vec<_>>(),
        ["commerce", "lookup"]
    );
    let commerce = vs.keyspace("commerce").unwrap();
    assert!(commerce.sharded);
    assert_eq!(commerce.name, "commerce");
    assert_eq!(commerce.vindexes["hash"].type_name(), "hash");
    let customer = commerce.table("customer").unwrap();
    assert_eq!(customer.kind, TableKind::Normal);
    let pv = customer.primary_vindex().unwrap();
    assert_eq!(pv.columns, ["customer_id"]);
    assert_eq!(pv.vindex_name, "hash");
    assert_eq!(
        pv.vindex.map(&VindexValue::Int(1)).unwrap(),
        [0x16, 0x6b, 0x40, 0xb4, 0x4a, 0xba, 0x4b, 0xd6]
    );
    assert_eq!(
        customer.auto_increment,
        Some(AutoIncrement {
            column: "customer_id".into(),
            sequence: ("lookup".into(), "customer_seq".into())
        })
    );
    assert_eq!(customer.vindexes_on("CUSTOMER_ID").count(), 1);
    assert_eq!(customer.vindexes_on("name").count(), 0);
    let corder = commerce.table("corder").unwrap();
    assert_eq!(corder.primary_vindex().unwrap().columns, ["customer_id"]);
    assert_eq!(corder.auto_increment, None);
    let product = commerce.table("Product").unwrap();
    assert_eq!(product.kind, TableKind::Reference { source: None });
    assert!(product.is_reference() && product.column_vindexes.is_empty());
    let lookup = vs.keyspace("lookup").unwrap();
    assert!(!lookup.sharded);
    assert!(lookup.table("customer_seq").unwrap().is_sequence());
    assert_eq!(default_vschema().keyspaces.len(), 2);
    // The default shards cover each keyspace.
    for ks in ["commerce", "lookup"] {
        let names: Vec<&str> = DEFAULT_SHARDS
            .iter()
            .filter(|(k, _)| *k == ks)
            .map(|(_, s)| *s)
            .collect();
        let m = ShardMap::from_names(&names).unwrap();
        assert!(m.check_full_coverage().is_empty(), "{ks}");
    }
}

#[test]
fn reference_source() {
    let vs = parse_vschema(WITH_SOURCE).unwrap();
    let (_, product) = vs.find_table(Some("commerce"), "product").unwrap();
    assert_eq!(
        product.kind,
        TableKind::Reference {
            source: Some(("lookup".into(), "product".into()))
        }
    );
    // `product` now exists twice: unqualified is ambiguous, qualified is fine.
    assert_eq!(
        vs.find_table(None, "product").unwrap_err(),
        TableLookupError::Ambiguous {
            table: "product".into(),
            keyspaces: vec!["commerce".into(), "lookup".into()]
        }
    );
    let (ks, t) = vs.find_table(Some("lookup"), "PRODUCT").unwrap();
    assert_eq!(
        (ks.name.as_str(), t.kind.clone()),
        ("lookup", TableKind::Normal)
    );
}

#[test]
fn find_table() {
    let vs = default_vschema();
    let (ks, t) = vs.find_table(None, "Customer").unwrap();
    assert_eq!(
        (ks.name.as_str(), t.name.as_str()),
        ("commerce", "customer")
    );
    let (ks, t) = vs.find_table(None, "customer_seq").unwrap();
    assert_eq!(
        (ks.name.as_str(), t.name.as_str()),
        ("lookup", "customer_seq")
    );
    let e = vs.find_table(None, "nope").unwrap_err();
    assert_eq!(
        e,
        TableLookupError::NoSuchTable {
            keyspace: None,
            table: "nope".into()
        }
    );
    assert_eq!(e.to_sql_error().code, 1146);
    let e = vs.find_table(Some("commerce"), "customer_seq").unwrap_err();
    assert_eq!(e.to_string(), "Table 'commerce.customer_seq' doesn't exist");
    assert_eq!(
        e.to_sql_error().message,
        "Table 'commerce.customer_seq' doesn't exist"
    );
    let e = vs.find_table(Some("Commerce"), "customer").unwrap_err();
    assert_eq!(e, TableLookupError::UnknownKeyspace("Commerce".into()));
    assert_eq!(e.to_sql_error().code, 1049);
    let amb = TableLookupError::Ambiguous {
        table: "t".into(),
        keyspaces: vec!["a".into(), "b".into()],
    };
    assert_eq!(amb.to_sql_error().code, 1105);
}

#[test]
fn case_and_aliases() {
    let vs = parse_vschema(
        r#"{"keyspaces": {"ks": {"sharded": true,
            "vindexes": {"xx": {"type": "xxhash"}, "Bin": {"type": "binary_md5"}},
            "tables": {"Users": {"columnVindexes": [{"column": "User_ID", "name": "xx"},
                                                    {"columns": ["Email"], "name": "Bin"}],
                                 "autoIncrement": {"column": "User_ID", "sequence": "`seqs`.`User_Seq`"}}}},
            "seqs": {"tables": {"user_seq": {"type": "sequence"}}}}}"#,
    )
    .unwrap();
    let (_, t) = vs.find_table(Some("ks"), "USERS").unwrap();
    assert_eq!(t.name, "users");
    assert_eq!(t.column_vindexes[0].columns, ["user_id"]);
    assert_eq!(t.column_vindexes[1].columns, ["email"]);
    assert_eq!(t.column_vindexes[1].vindex.type_name(), "binary_md5");
    assert_eq!(
        t.auto_increment.as_ref().unwrap().sequence,
        ("seqs".to_string(), "user_seq".to_string())
    );
    // Vindex names are case-sensitive.
    let errs = validate_json(
        r#"{"keyspaces": {"ks": {"sharded": true, "vindexes": {"H": {"type": "hash"}},
            "tables": {"t": {"column_vindexes": [{"column": "id", "name": "h"}]}}}}}"#,
    );
    assert_eq!(
        errs,
        [VSchemaError::new(
            "keyspaces.ks.tables.t.column_vindexes[0].name",
            "vindex \"h\" is not defined in keyspace ks"
        )]
    );
    assert_eq!(
        errs[0].to_string(),
        "keyspaces.ks.tables.t.column_vindexes[0].name: vindex \"h\" is not defined in keyspace ks"
    );
}

#[test]
fn unsharded_keyspaces_and_empty_files() {
    let vs = parse_vschema(r#"{"keyspaces": {"u": {}}}"#).unwrap();
    assert!(!vs.keyspace("u").unwrap().sharded);
    assert!(parse_vschema(r#"{"keyspaces": {}}"#)
        .unwrap()
        .keyspaces
        .is_empty());
    // A sharded keyspace may declare no tables at all.
    assert!(parse_vschema(r#"{"keyspaces": {"s": {"sharded": true}}}"#).is_ok());
    assert_eq!(validate_json("not json")[0].path, "");
    // The definition-level entry point agrees with the file-level one.
    let (def, errs) = json::decode(ALL_ERRORS);
    assert_eq!(errs.len(), 2);
    assert_eq!(validate(&def).len(), validate_json(ALL_ERRORS).len() - 2);
}
