//! Databases and tables: CREATE/DROP DATABASE, CREATE/DROP TABLE, CREATE/DROP INDEX, TRUNCATE,
//! USE, and the SHOW statements clients issue. DDL commits the open transaction first, as MySQL
//! does (implicit commit).

use crate::catalog::{store, Column, Index, IntKind, LobSize, SqlType, StoreCtx, TableSchema};
use crate::expr::{obj_parts, Compiler, Env, Scope};
use crate::storage::Table;
use crate::types::Val;
use crate::{unknown_db, Ctx, Database, Engine, EngineSession, Outcome, Res};
use shardgate_core::wire::{ColumnDef, ColumnType, OkInfo, Value};
use shardgate_core::SqlError;
use sqlparser::ast::{self, ColumnOption, DataType, Expr, ObjectType, Statement};
use std::cell::Cell;

fn text_col(name: &str) -> ColumnDef {
    let mut d = ColumnDef::new(name, ColumnType::VarString);
    d.length = 256;
    d
}

fn rows_of(names: &[&str], rows: Vec<Vec<Option<String>>>) -> Res {
    Res::Rows(
        names.iter().map(|n| text_col(n)).collect(),
        rows.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| match c {
                        Some(s) => Value::text(&s),
                        None => Value::Null,
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Statements sqlparser 0.63 rejects but clients send: `ALTER DATABASE ...` (accepted as a
/// no-op once the database is known to exist).
pub fn pre_parse(
    engine: &mut Engine,
    sess: &mut EngineSession,
    sql: &str,
) -> Option<Result<Outcome, SqlError>> {
    let head = sql.trim_start();
    if head.len() < 5 || !head[..5].eq_ignore_ascii_case("alter") {
        return None;
    }
    let dialect = sqlparser::dialect::MySqlDialect {};
    let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .ok()?;
    let words = crate::parse::leading_words(&tokens, 3);
    if words.len() < 2 || words[0] != "ALTER" || !(words[1] == "DATABASE" || words[1] == "SCHEMA") {
        return None;
    }
    let named = words
        .get(2)
        .filter(|w| !matches!(w.as_str(), "CHARACTER" | "CHARSET" | "COLLATE" | "DEFAULT"))
        .cloned();
    let db = match named {
        Some(_) => tokens
            .iter()
            .filter(|t| !matches!(t.token, sqlparser::tokenizer::Token::Whitespace(_)))
            .nth(2)
            .map(|t| match &t.token {
                sqlparser::tokenizer::Token::Word(w) => w.value.clone(),
                other => other.to_string(),
            }),
        None => sess.database.clone(),
    };
    Some(match db {
        None => Err(crate::no_db()),
        Some(d) if !engine.dbs.contains_key(&d) => Err(unknown_db(&d)),
        Some(_) => {
            engine.commit(sess);
            Ok(Outcome::Ok(OkInfo {
                affected_rows: 1,
                status: sess.status_flags(),
                ..Default::default()
            }))
        }
    })
}

fn current_db(sess: &EngineSession) -> Result<String, SqlError> {
    sess.database.clone().ok_or_else(crate::no_db)
}

fn split_name(sess: &EngineSession, n: &ast::ObjectName) -> Result<(String, String), SqlError> {
    let p = obj_parts(n);
    match p.as_slice() {
        [t] => Ok((current_db(sess)?, t.clone())),
        [d, t] => Ok((d.clone(), t.clone())),
        _ => Err(SqlError::syntax(format!("Incorrect table name '{n}'"))),
    }
}

fn like_filter(f: &Option<ast::ShowStatementFilterPosition>) -> Option<String> {
    match f {
        Some(ast::ShowStatementFilterPosition::Infix(ast::ShowStatementFilter::Like(p)))
        | Some(ast::ShowStatementFilterPosition::Suffix(ast::ShowStatementFilter::Like(p))) => {
            Some(p.clone())
        }
        _ => None,
    }
}

fn matches_like(name: &str, pat: &Option<String>) -> bool {
    match pat {
        None => true,
        Some(p) => crate::expr::like(name.as_bytes(), p.as_bytes(), '\\'),
    }
}

pub fn execute(
    engine: &mut Engine,
    sess: &mut EngineSession,
    stmt: &Statement,
    params: &[Value],
    now_ms: u64,
) -> Result<Res, SqlError> {
    let ok = |n: u64| Ok(Res::Ok(OkInfo::affected(n)));
    match stmt {
        Statement::Use(u) => {
            let name = match u {
                ast::Use::Object(n) | ast::Use::Database(n) | ast::Use::Schema(n) => obj_parts(n),
                _ => return Err(crate::expr::unsupported(&u.to_string())),
            };
            sess.set_database(&name.join("."), engine)?;
            ok(0)
        }
        Statement::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        }
        | Statement::CreateSchema {
            schema_name: ast::SchemaName::Simple(db_name),
            if_not_exists,
            ..
        } => {
            engine.commit(sess);
            let name = obj_parts(db_name).join(".");
            if engine.dbs.contains_key(&name) {
                if *if_not_exists {
                    return ok(0);
                }
                return Err(SqlError::new(
                    1007,
                    "HY000",
                    format!("Can't create database '{name}'; database exists"),
                ));
            }
            engine.dbs.insert(name, Database::default());
            ok(1)
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            table,
            ..
        } => {
            engine.commit(sess);
            match object_type {
                ObjectType::Database | ObjectType::Schema => {
                    let name = names
                        .first()
                        .map(|n| obj_parts(n).join("."))
                        .unwrap_or_default();
                    match engine.dbs.remove(&name) {
                        Some(db) => {
                            if sess.database.as_deref() == Some(&name) {
                                sess.database = None;
                            }
                            ok(db.tables.len() as u64)
                        }
                        None if *if_exists => ok(0),
                        None => Err(SqlError::new(
                            1008,
                            "HY000",
                            format!("Can't drop database '{name}'; database doesn't exist"),
                        )),
                    }
                }
                ObjectType::Table | ObjectType::View => {
                    let mut missing = Vec::new();
                    for n in names {
                        let (db, t) = split_name(sess, n)?;
                        let removed = engine
                            .dbs
                            .get_mut(&db)
                            .and_then(|d| d.tables.remove(&t))
                            .is_some();
                        if !removed {
                            missing.push(format!("{db}.{t}"));
                        }
                    }
                    if !missing.is_empty() && !*if_exists {
                        return Err(SqlError::new(
                            shardgate_core::error::codes::ER_BAD_TABLE_ERROR,
                            "42S02",
                            format!("Unknown table '{}'", missing.join(",")),
                        ));
                    }
                    ok(0)
                }
                ObjectType::Index => {
                    let Some(tn) = table else {
                        return Err(crate::expr::unsupported("DROP INDEX without ON table"));
                    };
                    let (db, t) = split_name(sess, tn)?;
                    let tab = engine
                        .table_mut(&db, &t)
                        .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{t}")))?;
                    let iname = names
                        .first()
                        .map(|n| obj_parts(n).join("."))
                        .unwrap_or_default();
                    if iname.eq_ignore_ascii_case("PRIMARY") {
                        return Err(crate::expr::unsupported("DROP PRIMARY KEY"));
                    }
                    match tab
                        .schema
                        .indexes
                        .iter()
                        .position(|i| i.name.eq_ignore_ascii_case(&iname))
                    {
                        Some(p) => {
                            tab.schema.indexes.remove(p);
                            tab.uniques.remove(p);
                            ok(0)
                        }
                        None => Err(SqlError::new(
                            1091,
                            "42000",
                            format!("Can't DROP INDEX `{iname}`; check that it exists"),
                        )),
                    }
                }
                other => Err(crate::expr::unsupported(&format!("DROP {other}"))),
            }
        }
        Statement::CreateTable(ct) => {
            engine.commit(sess);
            create_table(engine, sess, ct, params, now_ms)
        }
        Statement::CreateIndex(ci) => {
            engine.commit(sess);
            let (db, t) = split_name(sess, &ci.table_name)?;
            let tab = engine
                .table_mut(&db, &t)
                .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{t}")))?;
            let mut cols = Vec::new();
            for c in &ci.columns {
                cols.push(index_column(&tab.schema.columns, &c.column.expr)?);
            }
            let name = ci
                .name
                .as_ref()
                .map(|n| obj_parts(n).join("."))
                .unwrap_or_else(|| tab.schema.columns[cols[0]].name.clone());
            if tab
                .schema
                .indexes
                .iter()
                .any(|i| i.name.eq_ignore_ascii_case(&name))
            {
                if ci.if_not_exists {
                    return ok(0);
                }
                return Err(SqlError::new(
                    1061,
                    "42000",
                    format!("Duplicate key name '{name}'"),
                ));
            }
            tab.schema.indexes.push(Index {
                name,
                columns: cols,
                unique: ci.unique,
            });
            if let Err(e) = tab.rebuild_indexes() {
                tab.schema.indexes.pop();
                let _ = tab.rebuild_indexes();
                return Err(e);
            }
            ok(0)
        }
        Statement::AlterTable(at) => {
            engine.commit(sess);
            alter_table(engine, sess, at, params, now_ms)
        }
        Statement::Truncate(t) => {
            engine.commit(sess);
            for target in &t.table_names {
                let (db, tn) = split_name(sess, &target.name)?;
                let tab = engine
                    .table_mut(&db, &tn)
                    .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{tn}")))?;
                tab.clear();
            }
            ok(0)
        }
        Statement::ShowDatabases { show_options, .. } => {
            let pat = like_filter(&show_options.filter_position);
            let mut names: Vec<String> = vec!["information_schema".into()];
            names.extend(engine.dbs.keys().cloned());
            names.sort();
            let rows = names
                .into_iter()
                .filter(|n| matches_like(n, &pat))
                .map(|n| vec![Some(n)])
                .collect();
            let title = match &pat {
                Some(p) => format!("Database ({p})"),
                None => "Database".into(),
            };
            Ok(rows_of(&[&title], rows))
        }
        Statement::ShowTables {
            full, show_options, ..
        } => {
            let db = match show_options
                .show_in
                .as_ref()
                .and_then(|s| s.parent_name.as_ref())
            {
                Some(n) => obj_parts(n).join("."),
                None => current_db(sess)?,
            };
            let Some(d) = engine.dbs.get(&db) else {
                return Err(unknown_db(&db));
            };
            let pat = like_filter(&show_options.filter_position);
            let title = match &pat {
                Some(p) => format!("Tables_in_{db} ({p})"),
                None => format!("Tables_in_{db}"),
            };
            let rows: Vec<Vec<Option<String>>> = d
                .tables
                .keys()
                .filter(|n| matches_like(n, &pat))
                .map(|n| {
                    if *full {
                        vec![Some(n.clone()), Some("BASE TABLE".into())]
                    } else {
                        vec![Some(n.clone())]
                    }
                })
                .collect();
            if *full {
                Ok(rows_of(&[&title, "Table_type"], rows))
            } else {
                Ok(rows_of(&[&title], rows))
            }
        }
        Statement::ShowColumns { show_options, .. } => {
            let Some(name) = show_options
                .show_in
                .as_ref()
                .and_then(|s| s.parent_name.as_ref())
            else {
                return Err(SqlError::syntax("SHOW COLUMNS needs FROM table"));
            };
            let (db, t) = split_name(sess, name)?;
            let tab = engine
                .table(&db, &t)
                .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{t}")))?;
            let s = &tab.schema;
            let rows = s
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let key = if s.primary.contains(&i) {
                        "PRI"
                    } else if s
                        .indexes
                        .iter()
                        .any(|x| x.unique && x.columns.first() == Some(&i))
                    {
                        "UNI"
                    } else if s.indexes.iter().any(|x| x.columns.first() == Some(&i)) {
                        "MUL"
                    } else {
                        ""
                    };
                    vec![
                        Some(c.name.clone()),
                        Some(c.ty.sql_name()),
                        Some(if c.nullable { "YES" } else { "NO" }.into()),
                        Some(key.into()),
                        if c.default_now {
                            Some("current_timestamp()".into())
                        } else {
                            c.default.as_ref().and_then(|v| v.to_text())
                        },
                        Some(
                            if c.auto_increment {
                                "auto_increment"
                            } else {
                                ""
                            }
                            .into(),
                        ),
                    ]
                })
                .collect();
            Ok(rows_of(
                &["Field", "Type", "Null", "Key", "Default", "Extra"],
                rows,
            ))
        }
        Statement::ShowVariables { filter, .. } => {
            let pat = match filter {
                Some(ast::ShowStatementFilter::Like(p)) => Some(p.clone()),
                _ => None,
            };
            let ctx = Ctx {
                engine,
                sess,
                params,
                now_ms,
            };
            let mut rows = Vec::new();
            for n in crate::vars::SHOWN {
                if matches_like(n, &pat) {
                    if let Ok(v) = crate::vars::system_var(&ctx, n) {
                        rows.push(vec![
                            Some(n.to_string()),
                            Some(v.to_text().unwrap_or_default()),
                        ]);
                    }
                }
            }
            Ok(rows_of(&["Variable_name", "Value"], rows))
        }
        Statement::ShowStatus { .. } => Ok(rows_of(&["Variable_name", "Value"], vec![])),
        Statement::ShowVariable { variable } => {
            let w: Vec<String> = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            match w.first().map(|s| s.as_str()) {
                Some("warnings") | Some("errors") => {
                    Ok(rows_of(&["Level", "Code", "Message"], vec![]))
                }
                Some("engines") => Ok(rows_of(
                    &["Engine", "Support", "Comment", "Transactions", "XA", "Savepoints"],
                    vec![vec![
                        Some("InnoDB".into()),
                        Some("DEFAULT".into()),
                        Some("Simulated in-memory storage".into()),
                        Some("YES".into()),
                        Some("NO".into()),
                        Some("NO".into()),
                    ]],
                )),
                _ => Err(SqlError::syntax(format!(
                    "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '{}' at line 1",
                    variable.iter().map(|i| i.value.clone()).collect::<Vec<_>>().join(" ")
                ))),
            }
        }
        Statement::Flush { .. } | Statement::UnlockTables | Statement::LockTables { .. } => ok(0),
        Statement::Kill { id, .. } => Err(SqlError::no_such_thread(*id)),
        other => Err(crate::expr::unsupported(
            &other.to_string().chars().take(60).collect::<String>(),
        )),
    }
}

fn index_column(cols: &[Column], e: &Expr) -> Result<usize, SqlError> {
    let name = match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(ids) => ids.last().map(|i| i.value.clone()).unwrap_or_default(),
        // `KEY (c(10))`: a prefix index on c.
        Expr::Function(f) => obj_parts(&f.name).join("."),
        other => return Err(crate::expr::unsupported(&format!("index on {other}"))),
    };
    cols.iter()
        .position(|c| c.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| {
            SqlError::new(
                shardgate_core::error::codes::ER_KEY_COLUMN_DOES_NOT_EXITS,
                "42000",
                format!("Key column '{name}' doesn't exist in table"),
            )
        })
}

/// Maps a declared type.
pub fn sql_type(dt: &DataType) -> Result<SqlType, SqlError> {
    use DataType as D;
    let int = |kind: IntKind, unsigned: bool| SqlType::Int { kind, unsigned };
    let len = |c: &Option<ast::CharacterLength>, dflt: u32| match c {
        Some(ast::CharacterLength::IntegerLength { length, .. }) => {
            (*length).min(u32::MAX as u64) as u32
        }
        Some(ast::CharacterLength::Max) => 65535,
        None => dflt,
    };
    let dec = |info: &ast::ExactNumberInfo, unsigned: bool| -> Result<SqlType, SqlError> {
        let (p, s) = match info {
            ast::ExactNumberInfo::None => (10, 0),
            ast::ExactNumberInfo::Precision(p) => (*p, 0),
            ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, (*s).max(0) as u64),
        };
        if p > 65 || p == 0 {
            return Err(SqlError::new(
                1426,
                "42000",
                format!("Too big precision {p} specified. Maximum is 65"),
            ));
        }
        if s > 30 || s > p {
            return Err(SqlError::new(
                1425,
                "42000",
                format!("Too big scale {s} specified. Maximum is 30"),
            ));
        }
        Ok(SqlType::Decimal {
            p: p.min(38) as u8,
            s: s as u8,
            unsigned,
        })
    };
    let fsp = |f: &Option<u64>| f.unwrap_or(0).min(6) as u8;
    Ok(match dt {
        D::TinyInt(_) => int(IntKind::Tiny, false),
        D::TinyIntUnsigned(_) | D::UTinyInt => int(IntKind::Tiny, true),
        D::Bool | D::Boolean => int(IntKind::Tiny, false),
        D::SmallInt(_) | D::Int2(_) => int(IntKind::Small, false),
        D::SmallIntUnsigned(_) | D::Int2Unsigned(_) | D::USmallInt => int(IntKind::Small, true),
        D::MediumInt(_) => int(IntKind::Medium, false),
        D::MediumIntUnsigned(_) => int(IntKind::Medium, true),
        D::Int(_) | D::Integer(_) | D::Int4(_) => int(IntKind::Int, false),
        D::IntUnsigned(_) | D::IntegerUnsigned(_) | D::Int4Unsigned(_) => int(IntKind::Int, true),
        D::BigInt(_) | D::Int8(_) => int(IntKind::Big, false),
        D::BigIntUnsigned(_) | D::Int8Unsigned(_) | D::UBigInt => int(IntKind::Big, true),
        D::Decimal(i) | D::Numeric(i) | D::Dec(i) => dec(i, false)?,
        D::DecimalUnsigned(i) | D::DecUnsigned(i) => dec(i, true)?,
        D::Float(_) | D::FloatUnsigned(_) | D::Float4 | D::Real => SqlType::Float,
        D::Double(_)
        | D::DoubleUnsigned(_)
        | D::DoublePrecision
        | D::DoublePrecisionUnsigned
        | D::Float8
        | D::RealUnsigned => SqlType::Double,
        D::Char(l) | D::Character(l) => SqlType::Char(len(l, 1)),
        D::Varchar(l) | D::CharacterVarying(l) | D::CharVarying(l) | D::Nvarchar(l) => {
            if l.is_none() {
                return Err(SqlError::syntax(
                    "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'VARCHAR' at line 1",
                ));
            }
            SqlType::Varchar(len(l, 255))
        }
        D::Text => SqlType::Text(LobSize::Normal),
        D::TinyText => SqlType::Text(LobSize::Tiny),
        D::MediumText => SqlType::Text(LobSize::Medium),
        D::LongText => SqlType::Text(LobSize::Long),
        D::Binary(l) => SqlType::Binary(l.unwrap_or(1).min(255) as u32),
        D::Varbinary(l) => SqlType::Varbinary(match l {
            Some(ast::BinaryLength::IntegerLength { length }) => (*length).min(65535) as u32,
            _ => 65535,
        }),
        D::Blob(_) => SqlType::Blob(LobSize::Normal),
        D::TinyBlob => SqlType::Blob(LobSize::Tiny),
        D::MediumBlob => SqlType::Blob(LobSize::Medium),
        D::LongBlob => SqlType::Blob(LobSize::Long),
        D::Date => SqlType::Date,
        D::Datetime(f) => SqlType::DateTime(fsp(f)),
        D::Timestamp(f, _) => SqlType::Timestamp(fsp(f)),
        D::Time(f, _) => SqlType::Time(fsp(f)),
        D::Bit(n) => SqlType::Bit(n.unwrap_or(1).clamp(1, 64) as u8),
        D::Enum(members, _) => SqlType::Enum(
            members
                .iter()
                .map(|m| match m {
                    ast::EnumMember::Name(s) => s.clone(),
                    ast::EnumMember::NamedValue(s, _) => s.clone(),
                })
                .collect(),
        ),
        D::Set(members) => SqlType::Set(members.clone()),
        D::JSON => SqlType::Json,
        D::Custom(name, args) => {
            let n = obj_parts(name).join(".").to_ascii_lowercase();
            match n.as_str() {
                "year" => SqlType::Year,
                "serial" => int(IntKind::Big, true),
                _ => {
                    let _ = args;
                    return Err(crate::expr::unsupported(&format!("type {dt}")));
                }
            }
        }
        other => return Err(crate::expr::unsupported(&format!("type {other}"))),
    })
}

fn const_eval(ctx: &Ctx, e: &Expr) -> Result<Val, SqlError> {
    let scope = Scope::default();
    let mut c = Compiler::new(ctx, &scope, "field list");
    let (ce, _) = c.expr(e)?;
    let delay = Cell::new(0);
    crate::expr::eval(
        &ce,
        &Env {
            row: &[],
            aggs: &[],
            delay: &delay,
        },
    )
}

fn is_now(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let n = obj_parts(&f.name).join(".").to_ascii_lowercase();
            matches!(
                n.as_str(),
                "current_timestamp" | "now" | "localtime" | "localtimestamp"
            )
        }
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case("current_timestamp"),
        _ => false,
    }
}

fn create_table(
    engine: &mut Engine,
    sess: &mut EngineSession,
    ct: &ast::CreateTable,
    params: &[Value],
    now_ms: u64,
) -> Result<Res, SqlError> {
    let (db, name) = split_name(sess, &ct.name)?;
    let Some(database) = engine.dbs.get(&db) else {
        return Err(unknown_db(&db));
    };
    if database.tables.contains_key(&name) {
        if ct.if_not_exists {
            return Ok(Res::Ok(OkInfo::default()));
        }
        return Err(SqlError::new(
            shardgate_core::error::codes::ER_TABLE_EXISTS,
            "42S01",
            format!("Table '{name}' already exists"),
        ));
    }
    if ct.query.is_some() || ct.like.is_some() || ct.clone.is_some() {
        return Err(crate::expr::unsupported("CREATE TABLE ... SELECT/LIKE"));
    }
    if ct.columns.is_empty() {
        return Err(SqlError::new(
            1113,
            "42000",
            "A table must have at least 1 column",
        ));
    }
    let ctx = Ctx {
        engine,
        sess,
        params,
        now_ms,
    };
    let mut columns: Vec<Column> = Vec::new();
    let mut primary: Vec<usize> = Vec::new();
    let mut indexes: Vec<Index> = Vec::new();
    let mut pending_defaults: Vec<(usize, Expr)> = Vec::new();
    for (ci, c) in ct.columns.iter().enumerate() {
        if columns
            .iter()
            .any(|x| x.name.eq_ignore_ascii_case(&c.name.value))
        {
            return Err(SqlError::new(
                1060,
                "42S21",
                format!("Duplicate column name '{}'", c.name.value),
            ));
        }
        let ty = sql_type(&c.data_type)?;
        let mut col = Column {
            name: c.name.value.clone(),
            ty,
            nullable: true,
            default: None,
            default_now: false,
            auto_increment: false,
        };
        for o in &c.options {
            match &o.option {
                ColumnOption::Null => col.nullable = true,
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Default(e) => {
                    if is_now(e) {
                        col.default_now = true;
                    } else {
                        pending_defaults.push((ci, e.clone()));
                    }
                }
                ColumnOption::PrimaryKey(_) => {
                    if !primary.is_empty() {
                        return Err(SqlError::new(1068, "42000", "Multiple primary key defined"));
                    }
                    primary.push(ci);
                }
                ColumnOption::Unique(_) => indexes.push(Index {
                    name: col.name.clone(),
                    columns: vec![ci],
                    unique: true,
                }),
                ColumnOption::DialectSpecific(tokens) => {
                    let s: String = tokens
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if s.to_ascii_uppercase().contains("AUTO_INCREMENT") {
                        col.auto_increment = true;
                    }
                }
                _ => {}
            }
        }
        columns.push(col);
    }
    for c in &ct.constraints {
        match c {
            ast::TableConstraint::PrimaryKey(pk) => {
                if !primary.is_empty() {
                    return Err(SqlError::new(1068, "42000", "Multiple primary key defined"));
                }
                for ic in &pk.columns {
                    primary.push(index_column(&columns, &ic.column.expr)?);
                }
            }
            ast::TableConstraint::Unique(u) => {
                let mut cols = Vec::new();
                for ic in &u.columns {
                    cols.push(index_column(&columns, &ic.column.expr)?);
                }
                let name = u
                    .index_name
                    .as_ref()
                    .or(u.name.as_ref())
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| columns[cols[0]].name.clone());
                indexes.push(Index {
                    name,
                    columns: cols,
                    unique: true,
                });
            }
            ast::TableConstraint::Index(ix) => {
                let mut cols = Vec::new();
                for ic in &ix.columns {
                    cols.push(index_column(&columns, &ic.column.expr)?);
                }
                let name = ix
                    .name
                    .as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| columns[cols[0]].name.clone());
                indexes.push(Index {
                    name,
                    columns: cols,
                    unique: false,
                });
            }
            _ => {}
        }
    }
    // Index names must be unique; MySQL suffixes generated names with _2, _3...
    let mut seen: Vec<String> = Vec::new();
    for ix in &mut indexes {
        let base = ix.name.clone();
        let mut n = 2;
        while seen.iter().any(|s| s.eq_ignore_ascii_case(&ix.name)) {
            ix.name = format!("{base}_{n}");
            n += 1;
        }
        seen.push(ix.name.clone());
    }
    for &p in &primary {
        columns[p].nullable = false;
    }
    let autos: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].auto_increment)
        .collect();
    if autos.len() > 1
        || autos.iter().any(|&a| {
            primary.first() != Some(&a) && !indexes.iter().any(|x| x.columns.first() == Some(&a))
        })
    {
        return Err(SqlError::new(
            1075,
            "42000",
            "Incorrect table definition; there can be only one auto column and it must be defined as a key",
        ));
    }
    for (ci, e) in pending_defaults {
        let v = const_eval(&ctx, &e)?;
        let col = &columns[ci];
        let bad = || {
            SqlError::new(
                1067,
                "42000",
                format!("Invalid default value for '{}'", col.name),
            )
        };
        if v.is_null() {
            if !col.nullable {
                return Err(bad());
            }
            continue;
        }
        let stored = store(
            col,
            v,
            &StoreCtx {
                db: &db,
                table: &name,
            },
            1,
        )
        .map_err(|_| bad())?;
        columns[ci].default = Some(stored);
    }
    let mut auto_start = 1u64;
    if let ast::CreateTableOptions::Plain(opts) | ast::CreateTableOptions::Options(opts) =
        &ct.table_options
    {
        for o in opts {
            if let ast::SqlOption::KeyValue { key, value } = o {
                if key.value.eq_ignore_ascii_case("AUTO_INCREMENT") {
                    if let Ok(n) = value.to_string().parse::<u64>() {
                        auto_start = n.max(1);
                    }
                }
            }
        }
    }
    let schema = TableSchema {
        name: name.clone(),
        columns,
        primary,
        indexes,
    };
    let mut table = Table::new(schema);
    table.auto_inc = auto_start;
    if let Some(d) = engine.dbs.get_mut(&db) {
        d.tables.insert(name, table);
    }
    Ok(Res::Ok(OkInfo::default()))
}

/// `ALTER TABLE t ADD [COLUMN] c type … [FIRST | AFTER x]` (existing rows get the column's
/// default: the DEFAULT clause, else NULL, else the type's implicit zero value, as MySQL fills
/// them) and `DROP [COLUMN] c` (dropped from its indexes too; an index left empty goes).
/// Other operations answer 1235 (not supported). Operations apply in order; a failing one
/// leaves the table as it was.
fn alter_table(
    engine: &mut Engine,
    sess: &mut EngineSession,
    at: &ast::AlterTable,
    params: &[Value],
    now_ms: u64,
) -> Result<Res, SqlError> {
    use ast::AlterTableOperation as Op;
    let (db, name) = split_name(sess, &at.name)?;
    if !engine.dbs.contains_key(&db) {
        return Err(unknown_db(&db));
    }
    let Some(mut table) = engine.table_mut(&db, &name).cloned() else {
        if at.if_exists {
            return Ok(Res::Ok(OkInfo::default()));
        }
        return Err(SqlError::no_such_table(&format!("{db}.{name}")));
    };
    for op in &at.operations {
        match op {
            Op::AddColumn {
                if_not_exists,
                column_def,
                column_position,
                ..
            } => {
                if table
                    .schema
                    .columns
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(&column_def.name.value))
                {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        1060,
                        "42S21",
                        format!("Duplicate column name '{}'", column_def.name.value),
                    ));
                }
                let ctx = Ctx {
                    engine,
                    sess,
                    params,
                    now_ms,
                };
                let col = added_column(&ctx, &db, &name, column_def)?;
                let pos = match column_position {
                    None => table.schema.columns.len(),
                    Some(ast::MySQLColumnPosition::First) => 0,
                    Some(ast::MySQLColumnPosition::After(after)) => {
                        match table
                            .schema
                            .columns
                            .iter()
                            .position(|c| c.name.eq_ignore_ascii_case(&after.value))
                        {
                            Some(i) => i + 1,
                            None => return Err(unknown_column(&after.value, &name)),
                        }
                    }
                };
                let fill = if col.default_now {
                    let dt = crate::time::DateTime::from_unix_ms(now_ms);
                    let f = match col.ty {
                        SqlType::DateTime(f) | SqlType::Timestamp(f) => f,
                        _ => 0,
                    };
                    Val::str(&dt.datetime_string(f))
                } else {
                    match &col.default {
                        Some(v) => v.clone(),
                        None if col.nullable => Val::Null,
                        // (MySQL fills the type's implicit zero value)
                        None => crate::dml::implicit_default(&col.ty),
                    }
                };
                let shift = |i: &mut usize| {
                    if *i >= pos {
                        *i += 1;
                    }
                };
                table.schema.primary.iter_mut().for_each(shift);
                for ix in &mut table.schema.indexes {
                    ix.columns.iter_mut().for_each(shift);
                }
                table.schema.columns.insert(pos, col);
                for row in table.rows.values_mut() {
                    row.insert(pos.min(row.len()), fill.clone());
                }
            }
            Op::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for cn in column_names {
                    let Some(pos) = table
                        .schema
                        .columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&cn.value))
                    else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            1091,
                            "42000",
                            format!("Can't DROP COLUMN `{}`; check that it exists", cn.value),
                        ));
                    };
                    if table.schema.columns.len() == 1 {
                        return Err(SqlError::new(
                            1090,
                            "42000",
                            "You can't delete all columns with ALTER TABLE; use DROP TABLE instead",
                        ));
                    }
                    if table.schema.primary.contains(&pos) {
                        return Err(crate::expr::unsupported(
                            "ALTER TABLE ... DROP COLUMN of a primary key column",
                        ));
                    }
                    let unshift = |i: &mut usize| {
                        if *i > pos {
                            *i -= 1;
                        }
                    };
                    table.schema.primary.iter_mut().for_each(unshift);
                    for ix in &mut table.schema.indexes {
                        ix.columns.retain(|&c| c != pos);
                        ix.columns.iter_mut().for_each(unshift);
                    }
                    table.schema.indexes.retain(|ix| !ix.columns.is_empty());
                    table.schema.columns.remove(pos);
                    for row in table.rows.values_mut() {
                        if pos < row.len() {
                            row.remove(pos);
                        }
                    }
                }
            }
            other => {
                return Err(crate::expr::unsupported(&format!(
                    "ALTER TABLE ... {}",
                    other.to_string().chars().take(40).collect::<String>()
                )))
            }
        }
    }
    // Unique indexes over fewer columns may now collide (MySQL refuses with 1062).
    table.rebuild_indexes()?;
    if let Some(t) = engine.table_mut(&db, &name) {
        *t = table;
    }
    Ok(Res::Ok(OkInfo::default()))
}

fn unknown_column(col: &str, table: &str) -> SqlError {
    SqlError::new(
        1054,
        "42S22",
        format!("Unknown column '{col}' in '{table}'"),
    )
}

/// A column added by ALTER TABLE: type, NULL/NOT NULL, DEFAULT; keys and AUTO_INCREMENT on an
/// added column are not supported (1235).
fn added_column(ctx: &Ctx, db: &str, table: &str, c: &ast::ColumnDef) -> Result<Column, SqlError> {
    let mut col = Column {
        name: c.name.value.clone(),
        ty: sql_type(&c.data_type)?,
        nullable: true,
        default: None,
        default_now: false,
        auto_increment: false,
    };
    let mut default = None;
    for o in &c.options {
        match &o.option {
            ColumnOption::Null => col.nullable = true,
            ColumnOption::NotNull => col.nullable = false,
            ColumnOption::Default(e) if is_now(e) => col.default_now = true,
            ColumnOption::Default(e) => default = Some(e.clone()),
            ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) => {
                return Err(crate::expr::unsupported(
                    "ALTER TABLE ... ADD COLUMN with a key",
                ))
            }
            ColumnOption::DialectSpecific(tokens) => {
                let s: String = tokens.iter().map(|t| t.to_string()).collect();
                if s.to_ascii_uppercase().contains("AUTO_INCREMENT") {
                    return Err(crate::expr::unsupported(
                        "ALTER TABLE ... ADD COLUMN with AUTO_INCREMENT",
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some(e) = default {
        let v = const_eval(ctx, &e)?;
        let bad = || {
            SqlError::new(
                1067,
                "42000",
                format!("Invalid default value for '{}'", col.name),
            )
        };
        if v.is_null() {
            if !col.nullable {
                return Err(bad());
            }
        } else {
            let stored = store(&col, v, &StoreCtx { db, table }, 1).map_err(|_| bad())?;
            col.default = Some(stored);
        }
    }
    Ok(col)
}
