//! Plain-text rendering of protocol values for transcripts (DESIGN section 6): status flags by
//! name, column types by MySQL's names, cell values with NULL spelled out, control bytes
//! escaped. Nothing here uses `Debug`.

use shardgate_core::wire::consts::{status, ColumnType};
use shardgate_core::wire::{ColumnDef, OkInfo, Value};
use shardgate_core::SqlError;
use std::fmt::Write as _;

/// `AUTOCOMMIT|MORE_RESULTS`, or `0` when no flag is set.
pub fn status_flags(bits: u16) -> String {
    const NAMES: [(u16, &str); 14] = [
        (status::IN_TRANS, "IN_TRANS"),
        (status::AUTOCOMMIT, "AUTOCOMMIT"),
        (status::MORE_RESULTS_EXISTS, "MORE_RESULTS"),
        (status::NO_GOOD_INDEX_USED, "NO_GOOD_INDEX_USED"),
        (status::NO_INDEX_USED, "NO_INDEX_USED"),
        (status::CURSOR_EXISTS, "CURSOR_EXISTS"),
        (status::LAST_ROW_SENT, "LAST_ROW_SENT"),
        (status::DB_DROPPED, "DB_DROPPED"),
        (status::NO_BACKSLASH_ESCAPES, "NO_BACKSLASH_ESCAPES"),
        (status::METADATA_CHANGED, "METADATA_CHANGED"),
        (status::QUERY_WAS_SLOW, "QUERY_WAS_SLOW"),
        (status::PS_OUT_PARAMS, "PS_OUT_PARAMS"),
        (status::IN_TRANS_READONLY, "IN_TRANS_READONLY"),
        (status::SESSION_STATE_CHANGED, "SESSION_STATE_CHANGED"),
    ];
    if bits == 0 {
        return "0".to_string();
    }
    let mut out = String::new();
    let mut rest = bits;
    for (bit, name) in NAMES {
        if bits & bit != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "0x{rest:04x}");
    }
    out
}

/// MySQL's name of a column type (`MYSQL_TYPE_` stripped).
pub fn column_type(t: ColumnType) -> &'static str {
    use ColumnType::*;
    match t {
        Decimal => "DECIMAL",
        Tiny => "TINY",
        Short => "SHORT",
        Long => "LONG",
        Float => "FLOAT",
        Double => "DOUBLE",
        Null => "NULL",
        Timestamp => "TIMESTAMP",
        LongLong => "LONGLONG",
        Int24 => "INT24",
        Date => "DATE",
        Time => "TIME",
        DateTime => "DATETIME",
        Year => "YEAR",
        NewDate => "NEWDATE",
        VarChar => "VARCHAR",
        Bit => "BIT",
        Json => "JSON",
        NewDecimal => "NEWDECIMAL",
        Enum => "ENUM",
        Set => "SET",
        TinyBlob => "TINY_BLOB",
        MediumBlob => "MEDIUM_BLOB",
        LongBlob => "LONG_BLOB",
        Blob => "BLOB",
        VarString => "VAR_STRING",
        String => "STRING",
        Geometry => "GEOMETRY",
    }
}

/// `columns 2: id LONGLONG, name VAR_STRING` (`what` is `columns` or `params`).
pub fn columns(what: &str, cols: &[ColumnDef]) -> String {
    let mut out = format!("{what} {}:", cols.len());
    for (i, c) in cols.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(&escape(c.name.as_bytes()));
        out.push(' ');
        out.push_str(column_type(c.col_type));
        if c.is_unsigned() {
            out.push_str(" UNSIGNED");
        }
    }
    out
}

/// Bytes as readable text: valid UTF-8 passes, `\n`, `\r`, `\t`, `\\` and other control or
/// invalid bytes are escaped, so one packet is always one transcript line.
pub fn escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_str(s, &mut out);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                escape_str(std::str::from_utf8(good).unwrap_or(""), &mut out);
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for byte in &bad[..n] {
                    let _ = write!(out, "\\x{byte:02x}");
                }
                rest = &bad[n..];
            }
        }
    }
    out
}

fn escape_str(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// One cell: its text form, `NULL` for SQL NULL.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Bytes(b) => escape(b),
        other => other.to_text().unwrap_or_default(),
    }
}

/// A parameter as a SQL literal would read: numbers bare, strings quoted.
pub fn param(v: &Value) -> String {
    match v {
        Value::Bytes(b) => format!("'{}'", escape(b)),
        other => value(other),
    }
}

/// `1 | x | NULL`.
pub fn row(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        out.push_str(&value(v));
    }
    out
}

/// `OK affected=1 last_insert_id=3 status=AUTOCOMMIT`; zero ids, warnings and empty info are
/// left out.
pub fn ok(ok: &OkInfo) -> String {
    let mut out = format!("OK affected={}", ok.affected_rows);
    if ok.last_insert_id != 0 {
        let _ = write!(out, " last_insert_id={}", ok.last_insert_id);
    }
    if ok.warnings != 0 {
        let _ = write!(out, " warnings={}", ok.warnings);
    }
    let _ = write!(out, " status={}", status_flags(ok.status));
    if !ok.info.is_empty() {
        let _ = write!(out, " info={}", escape(ok.info.as_bytes()));
    }
    out
}

/// `EOF status=AUTOCOMMIT` (the OK-as-EOF of DEPRECATE_EOF renders the same way).
pub fn eof(status: u16, warnings: u16) -> String {
    if warnings != 0 {
        format!("EOF warnings={warnings} status={}", status_flags(status))
    } else {
        format!("EOF status={}", status_flags(status))
    }
}

/// `ERR 1317 (70100) Query execution was interrupted`.
pub fn err(e: &SqlError) -> String {
    format!(
        "ERR {} ({}) {}",
        e.code,
        e.sqlstate(),
        escape(e.message.as_bytes())
    )
}

/// A row as scenario files spell expected results: values separated by one space, `NULL`
/// for SQL NULL and `(empty)` for the empty string (sqllogictest's conventions).
pub fn expected_row(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match v {
            Value::Bytes(b) if b.is_empty() => out.push_str("(empty)"),
            v => out.push_str(&value(v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_escapes() {
        assert_eq!(
            status_flags(status::AUTOCOMMIT | status::MORE_RESULTS_EXISTS),
            "AUTOCOMMIT|MORE_RESULTS"
        );
        assert_eq!(status_flags(0), "0");
        assert_eq!(status_flags(1 << 15), "0x8000");
        assert_eq!(escape(b"a\nb\xff"), "a\\nb\\xff");
        assert_eq!(
            row(&[Value::Int(1), Value::Null, Value::text("x")]),
            "1 | NULL | x"
        );
    }
}
