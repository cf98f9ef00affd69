//! Table schemas: column types as MySQL declares them, their wire metadata, and the coercion of
//! a value into a column (strict mode, as MariaDB's default `STRICT_TRANS_TABLES`).

use crate::types::{numeric_prefix, str_to_f64, Dec, Val};
use shardgate_core::wire::consts::{charset, flag};
use shardgate_core::wire::{ColumnDef, ColumnType};
use shardgate_core::SqlError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    Tiny,
    Small,
    Medium,
    Int,
    Big,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LobSize {
    Tiny,
    Normal,
    Medium,
    Long,
}

/// A declared column type.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlType {
    Int { kind: IntKind, unsigned: bool },
    Decimal { p: u8, s: u8, unsigned: bool },
    Float,
    Double,
    Char(u32),
    Varchar(u32),
    Text(LobSize),
    Binary(u32),
    Varbinary(u32),
    Blob(LobSize),
    Date,
    DateTime(u8),
    Timestamp(u8),
    Time(u8),
    Year,
    Bit(u8),
    Enum(Vec<String>),
    Set(Vec<String>),
    Json,
}

impl SqlType {
    pub fn int_range(kind: IntKind, unsigned: bool) -> (i128, i128) {
        let bits = match kind {
            IntKind::Tiny => 8,
            IntKind::Small => 16,
            IntKind::Medium => 24,
            IntKind::Int => 32,
            IntKind::Big => 64,
        };
        if unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self,
            SqlType::Char(_)
                | SqlType::Varchar(_)
                | SqlType::Text(_)
                | SqlType::Binary(_)
                | SqlType::Varbinary(_)
                | SqlType::Blob(_)
        )
    }

    /// Type name as SHOW COLUMNS / information_schema print it.
    pub fn sql_name(&self) -> String {
        let lob = |p: &str, s: LobSize| match s {
            LobSize::Tiny => format!("tiny{p}"),
            LobSize::Normal => p.to_string(),
            LobSize::Medium => format!("medium{p}"),
            LobSize::Long => format!("long{p}"),
        };
        let q = |v: &Vec<String>| {
            v.iter()
                .map(|s| format!("'{}'", s.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let fsp = |n: &str, f: u8| {
            if f == 0 {
                n.to_string()
            } else {
                format!("{n}({f})")
            }
        };
        match self {
            SqlType::Int { kind, unsigned } => {
                let (n, w) = match kind {
                    IntKind::Tiny => ("tinyint", if *unsigned { 3 } else { 4 }),
                    IntKind::Small => ("smallint", if *unsigned { 5 } else { 6 }),
                    IntKind::Medium => ("mediumint", if *unsigned { 8 } else { 9 }),
                    IntKind::Int => ("int", if *unsigned { 10 } else { 11 }),
                    IntKind::Big => ("bigint", 20),
                };
                format!("{n}({w}){}", if *unsigned { " unsigned" } else { "" })
            }
            SqlType::Decimal { p, s, unsigned } => {
                format!(
                    "decimal({p},{s}){}",
                    if *unsigned { " unsigned" } else { "" }
                )
            }
            SqlType::Float => "float".into(),
            SqlType::Double => "double".into(),
            SqlType::Char(n) => format!("char({n})"),
            SqlType::Varchar(n) => format!("varchar({n})"),
            SqlType::Text(s) => lob("text", *s),
            SqlType::Binary(n) => format!("binary({n})"),
            SqlType::Varbinary(n) => format!("varbinary({n})"),
            SqlType::Blob(s) => lob("blob", *s),
            SqlType::Date => "date".into(),
            SqlType::DateTime(f) => fsp("datetime", *f),
            SqlType::Timestamp(f) => fsp("timestamp", *f),
            SqlType::Time(f) => fsp("time", *f),
            SqlType::Year => "year(4)".into(),
            SqlType::Bit(n) => format!("bit({n})"),
            SqlType::Enum(v) => format!("enum({})", q(v)),
            SqlType::Set(v) => format!("set({})", q(v)),
            SqlType::Json => "longtext".into(),
        }
    }

    /// Wire metadata for a value of this type (flags other than type-intrinsic ones are added by
    /// the caller).
    pub fn column_def(&self, name: &str) -> ColumnDef {
        let text = |ct: ColumnType, chars: u32| {
            let mut d = ColumnDef::new(name, ct);
            d.charset = charset::UTF8MB4_GENERAL_CI;
            d.length = chars.saturating_mul(4);
            d.flags = 0;
            d
        };
        let bin = |ct: ColumnType, len: u32| {
            let mut d = ColumnDef::new(name, ct);
            d.charset = charset::BINARY;
            d.length = len;
            d.flags = flag::BINARY;
            d
        };
        let lob_len = |s: LobSize| match s {
            LobSize::Tiny => 255u32,
            LobSize::Normal => 65535,
            LobSize::Medium => 16777215,
            LobSize::Long => u32::MAX,
        };
        match self {
            SqlType::Int { kind, unsigned } => {
                let (ct, len) = match kind {
                    IntKind::Tiny => (ColumnType::Tiny, 4),
                    IntKind::Small => (ColumnType::Short, 6),
                    IntKind::Medium => (ColumnType::Int24, 9),
                    IntKind::Int => (ColumnType::Long, 11),
                    IntKind::Big => (ColumnType::LongLong, 20),
                };
                let mut d = ColumnDef::new(name, ct);
                d.length = if *unsigned && *kind != IntKind::Big {
                    len - 1
                } else {
                    len
                };
                if *unsigned {
                    d.flags |= flag::UNSIGNED;
                }
                d
            }
            SqlType::Decimal { p, s, unsigned } => {
                let mut d = ColumnDef::new(name, ColumnType::NewDecimal);
                d.decimals = *s;
                d.length = *p as u32 + (*s > 0) as u32 + (!*unsigned) as u32;
                if *unsigned {
                    d.flags |= flag::UNSIGNED;
                }
                d
            }
            SqlType::Float => {
                let mut d = ColumnDef::new(name, ColumnType::Float);
                d.length = 12;
                d
            }
            SqlType::Double => ColumnDef::new(name, ColumnType::Double),
            SqlType::Char(n) => text(ColumnType::String, *n),
            SqlType::Varchar(n) => text(ColumnType::VarString, *n),
            SqlType::Text(s) => {
                let mut d = text(ColumnType::Blob, 0);
                d.length = lob_len(*s);
                d.flags = flag::BLOB;
                d
            }
            SqlType::Binary(n) => bin(ColumnType::String, *n),
            SqlType::Varbinary(n) => bin(ColumnType::VarString, *n),
            SqlType::Blob(s) => bin(ColumnType::Blob, lob_len(*s)),
            SqlType::Date => {
                let mut d = ColumnDef::new(name, ColumnType::Date);
                d.length = 10;
                d
            }
            SqlType::DateTime(f) | SqlType::Timestamp(f) => {
                let ct = if matches!(self, SqlType::DateTime(_)) {
                    ColumnType::DateTime
                } else {
                    ColumnType::Timestamp
                };
                let mut d = ColumnDef::new(name, ct);
                d.length = 19 + if *f > 0 { *f as u32 + 1 } else { 0 };
                d.decimals = *f;
                d
            }
            SqlType::Time(f) => {
                let mut d = ColumnDef::new(name, ColumnType::Time);
                d.length = 10 + if *f > 0 { *f as u32 + 1 } else { 0 };
                d.decimals = *f;
                d
            }
            SqlType::Year => {
                let mut d = ColumnDef::new(name, ColumnType::Year);
                d.length = 4;
                d.flags |= flag::UNSIGNED | flag::ZEROFILL;
                d
            }
            SqlType::Bit(n) => {
                let mut d = ColumnDef::new(name, ColumnType::Bit);
                d.length = *n as u32;
                d.flags = flag::UNSIGNED;
                d
            }
            SqlType::Enum(v) => {
                let mut d = text(
                    ColumnType::String,
                    v.iter().map(|s| s.len()).max().unwrap_or(1) as u32,
                );
                d.flags |= flag::ENUM;
                d
            }
            SqlType::Set(v) => {
                let mut d = text(
                    ColumnType::String,
                    v.iter().map(|s| s.len() + 1).sum::<usize>() as u32,
                );
                d.flags |= flag::SET;
                d
            }
            SqlType::Json => {
                let mut d = text(ColumnType::Blob, 0);
                d.length = u32::MAX;
                d.flags = flag::BLOB;
                d
            }
        }
    }
}

/// One column of a table.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// Declared default; `None` means "no DEFAULT clause".
    pub default: Option<Val>,
    /// `DEFAULT CURRENT_TIMESTAMP`.
    pub default_now: bool,
    pub auto_increment: bool,
}

/// An index over columns (by position). The primary key is kept separately.
#[derive(Clone, Debug)]
pub struct Index {
    pub name: String,
    pub columns: Vec<usize>,
    pub unique: bool,
}

/// A table's schema.
#[derive(Clone, Debug)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary key column positions; empty: a hidden row id orders rows (InnoDB's clustered
    /// index on an internal id), so scans return insertion order.
    pub primary: Vec<usize>,
    pub indexes: Vec<Index>,
}

impl TableSchema {
    pub fn find(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Wire metadata of column `i` as a table column.
    pub fn column_def(&self, i: usize, schema: &str, alias: &str) -> ColumnDef {
        let c = &self.columns[i];
        let mut d = c.ty.column_def(&c.name);
        d.org_name = c.name.clone();
        d.table = alias.to_string();
        d.org_table = self.name.clone();
        d.schema = schema.to_string();
        if !c.nullable {
            d.flags |= flag::NOT_NULL;
        }
        if self.primary.contains(&i) {
            d.flags |= flag::PRI_KEY;
        }
        if c.auto_increment {
            d.flags |= flag::AUTO_INCREMENT;
        }
        if self
            .indexes
            .iter()
            .any(|x| x.unique && x.columns.len() == 1 && x.columns[0] == i)
            && !self.primary.contains(&i)
        {
            d.flags |= flag::UNIQUE_KEY;
        }
        if self
            .indexes
            .iter()
            .any(|x| x.columns.first() == Some(&i) && !(x.unique && x.columns.len() == 1))
            && !self.primary.contains(&i)
        {
            d.flags |= flag::MULTIPLE_KEY;
        }
        if c.default.is_none() && !c.nullable && !c.auto_increment && !c.default_now {
            d.flags |= flag::NO_DEFAULT_VALUE;
        }
        d
    }
}

fn out_of_range(col: &str, row: usize) -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_WARN_DATA_OUT_OF_RANGE,
        "22003",
        format!("Out of range value for column '{col}' at row {row}"),
    )
}

fn too_long(col: &str, row: usize) -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_DATA_TOO_LONG,
        "22001",
        format!("Data too long for column '{col}' at row {row}"),
    )
}

fn incorrect(kind: &str, v: &Val, col: &Column, ctx: &StoreCtx, row: usize) -> SqlError {
    SqlError::new(
        1366,
        "22007",
        format!(
            "Incorrect {kind} value: '{}' for column `{}`.`{}`.`{}` at row {row}",
            v.to_text().unwrap_or_default(),
            ctx.db,
            ctx.table,
            col.name
        ),
    )
}

fn bad_temporal(kind: &str, v: &Val, col: &Column, row: usize) -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_TRUNCATED_WRONG_VALUE,
        "22007",
        format!(
            "Incorrect {kind} value: '{}' for column '{}' at row {row}",
            v.to_text().unwrap_or_default(),
            col.name
        ),
    )
}

/// Names used in store error messages.
pub struct StoreCtx<'a> {
    pub db: &'a str,
    pub table: &'a str,
}

/// Converts `v` into the column's stored form, or fails like strict mode does.
pub fn store(col: &Column, v: Val, ctx: &StoreCtx, row: usize) -> Result<Val, SqlError> {
    if v.is_null() {
        return Ok(Val::Null);
    }
    match &col.ty {
        SqlType::Int { kind, unsigned } => {
            let (lo, hi) = SqlType::int_range(*kind, *unsigned);
            let n: i128 = match &v {
                Val::Int(i) => *i as i128,
                Val::UInt(u) => *u as i128,
                Val::Dec(d) => d.rescale(0).map(|d| d.m).unwrap_or(i128::MAX),
                Val::Double(f) => {
                    if !f.is_finite() || f.abs() > 1e30 {
                        return Err(out_of_range(&col.name, row));
                    }
                    f.round() as i128
                }
                Val::Str(b) => {
                    let s = String::from_utf8_lossy(b);
                    let t = s.trim();
                    let p = numeric_prefix(t);
                    if p.is_empty() || p.len() != t.len() {
                        return Err(incorrect("integer", &v, col, ctx, row));
                    }
                    match p.parse::<i128>() {
                        Ok(n) => n,
                        Err(_) => {
                            let f = str_to_f64(b).0;
                            if f.abs() > 1e30 {
                                return Err(out_of_range(&col.name, row));
                            }
                            f.round() as i128
                        }
                    }
                }
                Val::Null => unreachable_null(),
            };
            if n < lo || n > hi {
                return Err(out_of_range(&col.name, row));
            }
            Ok(if *unsigned {
                Val::UInt(n as u64)
            } else {
                Val::Int(n as i64)
            })
        }
        SqlType::Decimal { p, s, unsigned } => {
            let d = match &v {
                Val::Str(b) => {
                    let st = String::from_utf8_lossy(b);
                    let t = st.trim();
                    let pre = numeric_prefix(t);
                    if pre.is_empty() || pre.len() != t.len() {
                        return Err(incorrect("decimal", &v, col, ctx, row));
                    }
                    Dec::parse(pre).or_else(|| Val::Double(str_to_f64(b).0).to_dec())
                }
                other => other.to_dec(),
            }
            .ok_or_else(|| out_of_range(&col.name, row))?;
            let d = d.rescale(*s).ok_or_else(|| out_of_range(&col.name, row))?;
            if d.int_digits() > (*p - *s) as u32 || (*unsigned && d.m < 0) {
                return Err(out_of_range(&col.name, row));
            }
            Ok(Val::Dec(d))
        }
        SqlType::Float | SqlType::Double => {
            let f = match &v {
                Val::Str(b) => {
                    let (f, whole) = str_to_f64(b);
                    if !whole {
                        return Err(incorrect("double", &v, col, ctx, row));
                    }
                    f
                }
                other => other.to_f64().unwrap_or(0.0),
            };
            if matches!(col.ty, SqlType::Float) {
                if f.abs() > f32::MAX as f64 {
                    return Err(out_of_range(&col.name, row));
                }
                Ok(Val::Double(f as f32 as f64))
            } else {
                Ok(Val::Double(f))
            }
        }
        SqlType::Char(n) | SqlType::Varchar(n) => {
            let b = v.to_bytes().unwrap_or_default();
            let s = String::from_utf8_lossy(&b);
            let mut chars = s.chars().count();
            let mut s = s.into_owned();
            if chars > *n as usize {
                // Trailing spaces beyond the length are silently dropped, as MySQL does.
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() <= *n as usize {
                    s = s.chars().take(*n as usize).collect();
                    chars = *n as usize;
                } else {
                    return Err(too_long(&col.name, row));
                }
            }
            let _ = chars;
            if matches!(col.ty, SqlType::Char(_)) {
                // CHAR strips trailing spaces on retrieval.
                let t = s.trim_end_matches(' ').to_string();
                return Ok(Val::Str(t.into_bytes()));
            }
            Ok(Val::Str(s.into_bytes()))
        }
        SqlType::Text(size) | SqlType::Blob(size) => {
            let b = v.to_bytes().unwrap_or_default();
            let max = match size {
                LobSize::Tiny => 255usize,
                LobSize::Normal => 65535,
                LobSize::Medium => 16777215,
                LobSize::Long => usize::MAX,
            };
            if b.len() > max {
                return Err(too_long(&col.name, row));
            }
            Ok(Val::Str(b))
        }
        SqlType::Binary(n) | SqlType::Varbinary(n) => {
            let mut b = v.to_bytes().unwrap_or_default();
            if b.len() > *n as usize {
                return Err(too_long(&col.name, row));
            }
            if matches!(col.ty, SqlType::Binary(_)) {
                b.resize(*n as usize, 0);
            }
            Ok(Val::Str(b))
        }
        SqlType::Date => match crate::time::parse_datetime(&v) {
            Some(dt) => Ok(Val::str(&dt.date_string())),
            None => Err(bad_temporal("date", &v, col, row)),
        },
        SqlType::DateTime(f) | SqlType::Timestamp(f) => match crate::time::parse_datetime(&v) {
            Some(dt) => Ok(Val::str(&dt.datetime_string(*f))),
            None => Err(bad_temporal("datetime", &v, col, row)),
        },
        SqlType::Time(f) => match crate::time::parse_time(&v) {
            Some(t) => Ok(Val::str(&crate::time::time_string(t, *f))),
            None => Err(bad_temporal("time", &v, col, row)),
        },
        SqlType::Year => {
            let n = match &v {
                Val::Str(b) => {
                    let (f, whole) = str_to_f64(b);
                    if !whole {
                        return Err(incorrect("integer", &v, col, ctx, row));
                    }
                    let n = f as i64;
                    if b.len() <= 2 && (0..70).contains(&n) {
                        n + 2000
                    } else if b.len() <= 2 {
                        n + 1900
                    } else {
                        n
                    }
                }
                other => {
                    let n = other.to_i64().unwrap_or(0);
                    if (1..70).contains(&n) {
                        n + 2000
                    } else if (70..100).contains(&n) {
                        n + 1900
                    } else {
                        n
                    }
                }
            };
            if n != 0 && !(1901..=2155).contains(&n) {
                return Err(out_of_range(&col.name, row));
            }
            Ok(Val::UInt(n as u64))
        }
        SqlType::Bit(n) => {
            let u: u64 = match &v {
                Val::Str(b) => {
                    if b.len() > 8 {
                        return Err(too_long(&col.name, row));
                    }
                    b.iter().fold(0u64, |a, x| (a << 8) | *x as u64)
                }
                other => other.to_i64().unwrap_or(0) as u64,
            };
            if *n < 64 && u >> *n != 0 {
                return Err(too_long(&col.name, row));
            }
            Ok(Val::UInt(u))
        }
        SqlType::Enum(members) => {
            let idx = match &v {
                Val::Str(b) => {
                    let key = crate::types::ci_key(b);
                    members
                        .iter()
                        .position(|m| crate::types::ci_key(m.as_bytes()) == key)
                }
                other => {
                    let i = other.to_i64().unwrap_or(0);
                    if i >= 1 && (i as usize) <= members.len() {
                        Some(i as usize - 1)
                    } else {
                        None
                    }
                }
            };
            match idx {
                Some(i) => Ok(Val::str(&members[i])),
                None => Err(SqlError::new(
                    1265,
                    "01000",
                    format!("Data truncated for column '{}' at row {row}", col.name),
                )),
            }
        }
        SqlType::Set(members) => {
            let b = v.to_bytes().unwrap_or_default();
            let s = String::from_utf8_lossy(&b);
            let mut picked = vec![false; members.len()];
            if v.is_numeric() {
                let bits = v.to_i64().unwrap_or(0) as u64;
                for (i, p) in picked.iter_mut().enumerate() {
                    *p = i < 64 && bits >> i & 1 == 1;
                }
            } else if !s.is_empty() {
                for part in s.split(',') {
                    let key = crate::types::ci_key(part.as_bytes());
                    match members
                        .iter()
                        .position(|m| crate::types::ci_key(m.as_bytes()) == key)
                    {
                        Some(i) => picked[i] = true,
                        None => {
                            return Err(SqlError::new(
                                1265,
                                "01000",
                                format!("Data truncated for column '{}' at row {row}", col.name),
                            ))
                        }
                    }
                }
            }
            let out: Vec<&str> = members
                .iter()
                .zip(picked)
                .filter(|(_, p)| *p)
                .map(|(m, _)| m.as_str())
                .collect();
            Ok(Val::str(&out.join(",")))
        }
        SqlType::Json => {
            let b = v.to_bytes().unwrap_or_default();
            if !crate::functions::json_valid(&b) {
                return Err(SqlError::new(
                    4025,
                    "23000",
                    format!(
                        "CONSTRAINT `{}.{}` failed for `{}`.`{}`",
                        ctx.table, col.name, ctx.db, ctx.table
                    ),
                ));
            }
            Ok(Val::Str(b))
        }
    }
}

fn unreachable_null() -> i128 {
    0
}
