//! System and user variables: `@@name` reads, `SET ...` in all its forms. Values clients probe
//! on connect (version_comment, max_allowed_packet, sql_mode, isolation...) have MariaDB-like
//! defaults; SET of anything else is recorded per session and otherwise ignored.

use crate::expr::{Compiler, Env, Scope};
use crate::types::Val;
use crate::{Ctx, Engine, EngineSession, Res};
use shardgate_core::wire::{OkInfo, Value};
use shardgate_core::SqlError;
use sqlparser::ast::{self, Expr, Set};
use std::cell::Cell;

const SQL_MODE: &str =
    "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION";

/// Canonical variable name: lower case, scope prefix removed.
fn canon(name: &str) -> String {
    let n = name.trim_start_matches('@').to_ascii_lowercase();
    for p in ["session.", "global.", "local."] {
        if let Some(r) = n.strip_prefix(p) {
            return r.to_string();
        }
    }
    n
}

fn default_var(engine: &Engine, name: &str) -> Option<Val> {
    let s = Val::str;
    let i = Val::Int;
    Some(match name {
        "version" => s(&engine.version),
        "version_comment" => s("shardgate simulated engine"),
        "version_compile_os" => s("Linux"),
        "version_compile_machine" => s("x86_64"),
        "protocol_version" => i(10),
        "max_allowed_packet" => i(16777216),
        "net_buffer_length" => i(16384),
        "tx_isolation" | "transaction_isolation" => s("REPEATABLE-READ"),
        "tx_read_only" | "transaction_read_only" | "read_only" | "super_read_only" => i(0),
        "sql_mode" => s(SQL_MODE),
        "character_set_client" | "character_set_connection" | "character_set_results"
        | "character_set_server" | "character_set_database" => s("utf8mb4"),
        "character_set_system" => s("utf8mb3"),
        "character_set_filesystem" => s("binary"),
        "collation_connection" | "collation_server" | "collation_database" => {
            s("utf8mb4_general_ci")
        }
        "time_zone" => s("SYSTEM"),
        "system_time_zone" => s("UTC"),
        "lower_case_table_names" => i(0),
        "wait_timeout" | "interactive_timeout" => i(28800),
        "net_read_timeout" => i(30),
        "net_write_timeout" => i(60),
        "max_connections" => i(151),
        "license" => s("GPL"),
        "init_connect" => s(""),
        "auto_increment_increment" | "auto_increment_offset" => i(1),
        "innodb_lock_wait_timeout" | "lock_wait_timeout" => i(50),
        "query_cache_size" | "query_cache_type" => i(0),
        "performance_schema" => i(0),
        "hostname" => s("localhost"),
        "port" => i(3306),
        "server_id" => i(1),
        "default_storage_engine" | "storage_engine" => s("InnoDB"),
        "div_precision_increment" => i(4),
        "sql_auto_is_null" | "sql_safe_updates" | "sql_log_bin" => i(0),
        "foreign_key_checks" | "unique_checks" => i(1),
        "sql_select_limit" | "max_join_size" => Val::UInt(u64::MAX),
        "long_query_time" => Val::Double(10.0),
        "have_ssl" | "have_openssl" => s("DISABLED"),
        "warning_count" | "error_count" => i(0),
        "session_track_schema" | "session_track_state_change" => i(0),
        "session_track_system_variables" => s("autocommit,character_set_client,character_set_connection,character_set_results,time_zone"),
        "session_track_transaction_info" => s("OFF"),
        "default_week_format" => i(0),
        "group_concat_max_len" => i(1048576),
        "sql_quote_show_create" => i(1),
        "max_execution_time" | "max_statement_time" => i(0),
        "socket" => s("/run/mysqld/mysqld.sock"),
        "datadir" => s("/var/lib/mysql/"),
        "basedir" => s("/usr"),
        "tmpdir" => s("/tmp"),
        "default_authentication_plugin" => s("mysql_native_password"),
        "ssl_cipher" => s(""),
        "version_ssl_library" => s(""),
        "in_transaction" => i(0),
        "binlog_format" => s("MIXED"),
        "log_bin" => i(0),
        "gtid_mode" => s("OFF"),
        _ => return None,
    })
}

/// Reads a system variable (`@@name`, `@@session.name`, `@@global.name`).
pub fn system_var(ctx: &Ctx, name: &str) -> Result<Val, SqlError> {
    let n = canon(name);
    match n.as_str() {
        "autocommit" => return Ok(Val::Int(ctx.sess.autocommit as i64)),
        "in_transaction" => return Ok(Val::Int(ctx.sess.in_tx as i64)),
        "last_insert_id" | "identity" => return Ok(Val::UInt(ctx.sess.last_insert_id)),
        "pseudo_thread_id" => return Ok(Val::UInt(ctx.sess.connection_id as u64)),
        "timestamp" => return Ok(Val::Int((ctx.now_ms / 1000) as i64)),
        _ => {}
    }
    if let Some(v) = ctx.sess.sys_vars.get(&n) {
        return Ok(v.clone());
    }
    default_var(ctx.engine, &n).ok_or_else(|| {
        SqlError::new(
            shardgate_core::error::codes::ER_UNKNOWN_SYSTEM_VARIABLE,
            "HY000",
            format!("Unknown system variable '{n}'"),
        )
    })
}

/// Evaluates a SET right-hand side: bare words (ON, OFF, utf8mb4, DEFAULT) are strings.
fn eval_value(ctx: &Ctx, e: &Expr) -> Result<Val, SqlError> {
    if let Expr::Identifier(id) = e {
        if id.quote_style.is_none() && !id.value.starts_with('@') {
            return Ok(Val::str(&id.value));
        }
    }
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

fn truthy_setting(v: &Val) -> Option<bool> {
    match v {
        Val::Str(b) => match String::from_utf8_lossy(b).to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Some(true),
            "off" | "false" | "0" => Some(false),
            _ => None,
        },
        Val::Null => None,
        other => other.truth(),
    }
}

fn wrong_value(var: &str, v: &Val) -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_WRONG_VALUE_FOR_VAR,
        "42000",
        format!(
            "Variable '{var}' can't be set to the value of '{}'",
            v.to_text().unwrap_or_else(|| "NULL".into())
        ),
    )
}

fn assign(
    engine: &mut Engine,
    sess: &mut EngineSession,
    name: &str,
    v: Val,
) -> Result<(), SqlError> {
    if let Some(user) = name.strip_prefix('@').filter(|n| !n.starts_with('@')) {
        sess.user_vars.insert(user.to_ascii_lowercase(), v);
        return Ok(());
    }
    let n = canon(name);
    match n.as_str() {
        "autocommit" => {
            let on = truthy_setting(&v).ok_or_else(|| wrong_value("autocommit", &v))?;
            if on && !sess.autocommit {
                // Switching autocommit on commits the open transaction.
                engine.commit(sess);
            }
            sess.autocommit = on;
        }
        "names" => {
            for k in [
                "character_set_client",
                "character_set_connection",
                "character_set_results",
            ] {
                sess.sys_vars.insert(k.into(), v.clone());
            }
        }
        _ => {
            let v = match (&n[..], &v) {
                ("transaction_isolation" | "tx_isolation", Val::Str(b)) => Val::str(
                    &String::from_utf8_lossy(b)
                        .to_ascii_uppercase()
                        .replace(' ', "-"),
                ),
                _ => v,
            };
            if n == "transaction_isolation" || n == "tx_isolation" {
                sess.sys_vars
                    .insert("transaction_isolation".into(), v.clone());
                sess.sys_vars.insert("tx_isolation".into(), v);
            } else {
                sess.sys_vars.insert(n, v);
            }
        }
    }
    Ok(())
}

fn var_name(scope: Option<&ast::ContextModifier>, name: &ast::ObjectName) -> String {
    let parts = crate::expr::obj_parts(name);
    let joined = parts.join(".");
    match scope {
        Some(ast::ContextModifier::Global) => format!("@@global.{}", canon(&joined)),
        _ => joined,
    }
}

/// Executes a SET statement.
pub fn execute_set(
    engine: &mut Engine,
    sess: &mut EngineSession,
    s: &Set,
    params: &[Value],
    now_ms: u64,
) -> Result<Res, SqlError> {
    let mut assignments: Vec<(String, Val)> = Vec::new();
    {
        let ctx = Ctx {
            engine,
            sess,
            params,
            now_ms,
        };
        match s {
            Set::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => {
                let v = match values.first() {
                    Some(e) => eval_value(&ctx, e)?,
                    None => Val::Null,
                };
                assignments.push((var_name(scope.as_ref(), variable), v));
            }
            Set::MultipleAssignments { assignments: list } => {
                for a in list {
                    let v = eval_value(&ctx, &a.value)?;
                    assignments.push((var_name(a.scope.as_ref(), &a.name), v));
                }
            }
            Set::ParenthesizedAssignments { variables, values } => {
                for (n, e) in variables.iter().zip(values) {
                    let v = eval_value(&ctx, e)?;
                    assignments.push((var_name(None, n), v));
                }
            }
            Set::SetNames { charset_name, .. } => {
                assignments.push(("names".into(), Val::str(&charset_name.value)));
            }
            Set::SetNamesDefault {} => {
                assignments.push(("names".into(), Val::str("utf8mb4")));
            }
            Set::SetTimeZone { value, .. } => {
                let v = eval_value(&ctx, value)?;
                assignments.push(("time_zone".into(), v));
            }
            // SET TRANSACTION ..., SET ROLE, SET SESSION AUTHORIZATION: accepted, no effect.
            _ => {}
        }
    }
    for (n, v) in assignments {
        if n.starts_with("@@global.") {
            continue;
        }
        assign(engine, sess, &n, v)?;
    }
    Ok(Res::Ok(OkInfo::default()))
}

/// Variables listed by SHOW VARIABLES (sorted, as the server prints them).
pub const SHOWN: &[&str] = &[
    "auto_increment_increment",
    "auto_increment_offset",
    "autocommit",
    "character_set_client",
    "character_set_connection",
    "character_set_database",
    "character_set_results",
    "character_set_server",
    "character_set_system",
    "collation_connection",
    "collation_database",
    "collation_server",
    "default_storage_engine",
    "div_precision_increment",
    "foreign_key_checks",
    "group_concat_max_len",
    "have_ssl",
    "hostname",
    "init_connect",
    "interactive_timeout",
    "license",
    "lower_case_table_names",
    "max_allowed_packet",
    "max_connections",
    "net_buffer_length",
    "net_read_timeout",
    "net_write_timeout",
    "performance_schema",
    "port",
    "protocol_version",
    "server_id",
    "sql_mode",
    "system_time_zone",
    "time_zone",
    "transaction_isolation",
    "tx_isolation",
    "version",
    "version_comment",
    "wait_timeout",
];
