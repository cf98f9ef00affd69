//! Expressions: sqlparser ASTs are compiled once per statement into [`CExpr`] (columns resolved
//! to positions, constants such as NOW() or @@vars folded, the static result type inferred the
//! way MySQL does), then evaluated per row without further lookups.

use crate::functions::{self, F};
use crate::types::{ci_key, compare, Dec, Val};
use crate::Ctx;
use shardgate_core::error::codes;
use shardgate_core::wire::consts::{charset, flag};
use shardgate_core::wire::{ColumnDef, ColumnType, Value};
use shardgate_core::SqlError;
use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};
use std::cell::Cell;
use std::cmp::Ordering;

/// A column visible to expressions: the qualifier it can be referenced by and its metadata.
#[derive(Clone, Debug)]
pub struct ScopeCol {
    pub db: String,
    pub qual: String,
    pub name: String,
    pub def: ColumnDef,
}

#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub cols: Vec<ScopeCol>,
}

/// Arithmetic kind of a static type; drives how operators compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum K {
    Int,
    UInt,
    Dec(u8),
    Double,
    Str,
    Null,
}

pub fn kind(d: &ColumnDef) -> K {
    match d.col_type {
        ColumnType::Null => K::Null,
        ColumnType::Bit => K::UInt,
        t if t.is_integer() => {
            if d.flags & flag::UNSIGNED != 0 {
                K::UInt
            } else {
                K::Int
            }
        }
        ColumnType::NewDecimal | ColumnType::Decimal => K::Dec(d.decimals),
        ColumnType::Float | ColumnType::Double => K::Double,
        _ => K::Str,
    }
}

pub fn ty_int() -> ColumnDef {
    let mut d = ColumnDef::new("", ColumnType::LongLong);
    d.length = 21;
    d
}
pub fn ty_uint() -> ColumnDef {
    let mut d = ty_int();
    d.flags |= flag::UNSIGNED;
    d
}
pub fn ty_dec(scale: u8) -> ColumnDef {
    let mut d = ColumnDef::new("", ColumnType::NewDecimal);
    d.decimals = scale;
    d
}
pub fn ty_double() -> ColumnDef {
    ColumnDef::new("", ColumnType::Double)
}
pub fn ty_str() -> ColumnDef {
    let mut d = ColumnDef::new("", ColumnType::VarString);
    d.charset = charset::UTF8MB4_GENERAL_CI;
    d
}
pub fn ty_null() -> ColumnDef {
    ColumnDef::new("", ColumnType::Null)
}
pub fn ty_of_kind(k: K) -> ColumnDef {
    match k {
        K::Int => ty_int(),
        K::UInt => ty_uint(),
        K::Dec(s) => ty_dec(s),
        K::Double => ty_double(),
        K::Str => ty_str(),
        K::Null => ty_null(),
    }
}

/// Strips table metadata: a derived value is not a table column.
pub fn derived(mut d: ColumnDef) -> ColumnDef {
    d.table.clear();
    d.org_table.clear();
    d.schema.clear();
    d.org_name.clear();
    d.flags &= !(flag::PRI_KEY
        | flag::UNIQUE_KEY
        | flag::MULTIPLE_KEY
        | flag::AUTO_INCREMENT
        | flag::NO_DEFAULT_VALUE
        | flag::NOT_NULL);
    d
}

/// The common type of CASE/IF/COALESCE branches.
pub fn merge_types(ts: &[&ColumnDef]) -> ColumnDef {
    let real: Vec<&&ColumnDef> = ts
        .iter()
        .filter(|t| t.col_type != ColumnType::Null)
        .collect();
    if real.is_empty() {
        return ty_null();
    }
    let first = real[0];
    if real
        .iter()
        .all(|t| t.col_type == first.col_type && kind(t) == kind(first))
    {
        return derived((*first).clone());
    }
    let ks: Vec<K> = real.iter().map(|t| kind(t)).collect();
    if ks.contains(&K::Str) {
        return ty_str();
    }
    if ks.contains(&K::Double) {
        return ty_double();
    }
    if let Some(s) = ks
        .iter()
        .filter_map(|k| if let K::Dec(s) = k { Some(*s) } else { None })
        .max()
    {
        return ty_dec(s);
    }
    if ks.iter().all(|k| *k == K::UInt) {
        ty_uint()
    } else {
        ty_int()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// A compiled expression.
#[derive(Clone, Debug)]
pub enum CExpr {
    Lit(Val),
    Col(usize),
    Agg(usize),
    Neg(Box<CExpr>, K),
    Not(Box<CExpr>),
    BitNot(Box<CExpr>),
    Arith(ArOp, Box<CExpr>, Box<CExpr>, K, String),
    Bit(BitOp, Box<CExpr>, Box<CExpr>),
    Cmp(CmpOp, Box<CExpr>, Box<CExpr>),
    NullEq(Box<CExpr>, Box<CExpr>),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Xor(Box<CExpr>, Box<CExpr>),
    IsNull(Box<CExpr>, bool),
    /// IS [NOT] TRUE/FALSE: (expr, wanted truth, negated).
    IsBool(Box<CExpr>, bool, bool),
    In(Box<CExpr>, Vec<CExpr>, bool),
    Between(Box<CExpr>, Box<CExpr>, Box<CExpr>, bool),
    Like(Box<CExpr>, Box<CExpr>, char, bool),
    Case {
        operand: Option<Box<CExpr>>,
        whens: Vec<(CExpr, CExpr)>,
        els: Option<Box<CExpr>>,
    },
    Func(F, Vec<CExpr>),
    /// Converts a value to a static type (CAST, branch unification).
    Conform(Box<CExpr>, ColumnDef),
}

impl CExpr {
    pub fn is_const(&self) -> bool {
        matches!(self, CExpr::Lit(_))
    }
}

/// Per-row evaluation environment.
pub struct Env<'a> {
    pub row: &'a [Val],
    pub aggs: &'a [Val],
    /// Accumulated SLEEP() time.
    pub delay: &'a Cell<u64>,
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFn {
    Count,
    CountStar,
    Sum,
    Avg,
    Min,
    Max,
    GroupConcat,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Clone, Debug)]
pub struct AggSpec {
    pub func: AggFn,
    pub args: Vec<CExpr>,
    pub distinct: bool,
    pub arg_ty: ColumnDef,
    pub out_ty: ColumnDef,
    pub separator: Vec<u8>,
}

/// Where aliases of the select list may be used while resolving names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasMode {
    Never,
    /// ORDER BY: aliases first.
    First,
    /// GROUP BY / HAVING: table columns first.
    Fallback,
}

/// Compiles expressions against a scope.
pub struct Compiler<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub scope: &'c Scope,
    pub aggs: Vec<AggSpec>,
    pub allow_aggs: bool,
    in_agg: bool,
    pub aliases: Vec<(String, CExpr, ColumnDef)>,
    pub alias_mode: AliasMode,
    /// Clause name for error messages ("field list", "where clause", ...).
    pub clause: &'static str,
}

pub fn unknown_column(name: &str, clause: &str) -> SqlError {
    SqlError::new(
        codes::ER_BAD_FIELD,
        "42S22",
        format!("Unknown column '{name}' in '{clause}'"),
    )
}

fn ident_name(i: &ast::Ident) -> String {
    i.value.clone()
}

pub fn obj_parts(n: &ast::ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect()
}

/// Literal number text to a value: integers, exact decimals, or doubles with an exponent.
pub fn number_literal(s: &str) -> (Val, ColumnDef) {
    if s.contains(['e', 'E']) {
        return (Val::Double(s.parse().unwrap_or(0.0)), ty_double());
    }
    if !s.contains('.') {
        if let Ok(i) = s.parse::<i64>() {
            let mut d = ty_int();
            d.length = s.len() as u32;
            return (Val::Int(i), d);
        }
        if let Ok(u) = s.parse::<u64>() {
            let mut d = ty_uint();
            d.length = s.len() as u32;
            return (Val::UInt(u), d);
        }
    }
    match Dec::parse(s) {
        Some(d) => (Val::Dec(d), ty_dec(d.s)),
        None => (Val::Double(s.parse().unwrap_or(0.0)), ty_double()),
    }
}

/// A bound parameter or literal wire value as an engine value with its static type.
pub fn wire_to_val(v: &Value) -> (Val, ColumnDef) {
    match v {
        Value::Null => (Val::Null, ty_null()),
        Value::Int(i) => (Val::Int(*i), ty_int()),
        Value::UInt(u) => (Val::UInt(*u), ty_uint()),
        Value::Float(f) => (Val::Double(*f as f64), ty_double()),
        Value::Double(f) => (Val::Double(*f), ty_double()),
        Value::Bytes(b) => (Val::Str(b.to_vec()), ty_str()),
    }
}

/// Static type of a literal value.
pub fn ty_of_val(v: &Val) -> ColumnDef {
    match v {
        Val::Null => ty_null(),
        Val::Int(_) => ty_int(),
        Val::UInt(_) => ty_uint(),
        Val::Dec(d) => ty_dec(d.s),
        Val::Double(_) => ty_double(),
        Val::Str(_) => ty_str(),
    }
}

fn hex_bytes(h: &str) -> Option<Vec<u8>> {
    let h = if h.len() % 2 == 1 {
        format!("0{h}")
    } else {
        h.to_string()
    };
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

fn bits_bytes(b: &str) -> Option<Vec<u8>> {
    let mut v: u128 = 0;
    for c in b.chars() {
        v = (v << 1) | c.to_digit(2)? as u128;
    }
    let n = b.len().div_ceil(8).max(1);
    Some((0..n).rev().map(|i| (v >> (i * 8)) as u8).collect())
}

pub fn arith_kind(op: ArOp, a: K, b: K) -> K {
    if op == ArOp::IntDiv {
        return K::Int;
    }
    let nk = |k: K| match k {
        K::Str => K::Double,
        K::Null => K::Int,
        o => o,
    };
    let (a, b) = (nk(a), nk(b));
    if a == K::Double || b == K::Double {
        return K::Double;
    }
    let sc = |k: K| if let K::Dec(s) = k { s } else { 0 };
    let is_dec = matches!(a, K::Dec(_)) || matches!(b, K::Dec(_));
    if is_dec || op == ArOp::Div {
        let (sa, sb) = (sc(a), sc(b));
        let s = match op {
            ArOp::Add | ArOp::Sub | ArOp::Mod | ArOp::IntDiv => sa.max(sb),
            ArOp::Mul => sa.saturating_add(sb),
            ArOp::Div => sa.saturating_add(4),
        };
        return K::Dec(s.min(30));
    }
    if a == K::UInt || b == K::UInt {
        K::UInt
    } else {
        K::Int
    }
}

impl<'c, 'a> Compiler<'c, 'a> {
    pub fn new(ctx: &'c Ctx<'a>, scope: &'c Scope, clause: &'static str) -> Self {
        Compiler {
            ctx,
            scope,
            aggs: Vec::new(),
            allow_aggs: false,
            in_agg: false,
            aliases: Vec::new(),
            alias_mode: AliasMode::Never,
            clause,
        }
    }

    fn resolve(&self, parts: &[String]) -> Result<(CExpr, ColumnDef), SqlError> {
        let full = parts.join(".");
        let name = parts.last().map(|s| s.as_str()).unwrap_or("");
        let alias_hit = || {
            if parts.len() == 1 {
                self.aliases
                    .iter()
                    .find(|(a, _, _)| a.eq_ignore_ascii_case(name))
                    .map(|(_, e, t)| (e.clone(), t.clone()))
            } else {
                None
            }
        };
        if self.alias_mode == AliasMode::First {
            if let Some(hit) = alias_hit() {
                return Ok(hit);
            }
        }
        let mut found: Option<usize> = None;
        for (i, c) in self.scope.cols.iter().enumerate() {
            if !c.name.eq_ignore_ascii_case(name) {
                continue;
            }
            let ok = match parts.len() {
                1 => true,
                2 => c.qual == parts[0],
                3 => c.qual == parts[1] && c.db == parts[0],
                _ => false,
            };
            if ok {
                if found.is_some() {
                    return Err(SqlError::new(
                        codes::ER_NON_UNIQ_ERROR,
                        "23000",
                        format!("Column '{full}' in {} is ambiguous", self.clause),
                    ));
                }
                found = Some(i);
            }
        }
        match found {
            Some(i) => {
                let mut d = self.scope.cols[i].def.clone();
                d.name = name.to_string();
                Ok((CExpr::Col(i), d))
            }
            None => {
                if self.alias_mode == AliasMode::Fallback {
                    if let Some(hit) = alias_hit() {
                        return Ok(hit);
                    }
                }
                Err(unknown_column(&full, self.clause))
            }
        }
    }

    fn variable(&self, parts: &[String]) -> Option<Result<(CExpr, ColumnDef), SqlError>> {
        let first = parts.first()?;
        if let Some(rest) = first.strip_prefix("@@") {
            let name = if parts.len() > 1 {
                parts[1..].join(".")
            } else {
                rest.to_string()
            };
            let name = if rest.eq_ignore_ascii_case("session")
                || rest.eq_ignore_ascii_case("global")
                || rest.eq_ignore_ascii_case("local")
            {
                name
            } else {
                parts.join(".").trim_start_matches("@@").to_string()
            };
            return Some(crate::vars::system_var(self.ctx, &name).map(|v| {
                let t = ty_of_val(&v);
                (CExpr::Lit(v), t)
            }));
        }
        if let Some(name) = first.strip_prefix('@') {
            let v = self
                .ctx
                .sess
                .user_vars
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or(Val::Null);
            let t = ty_of_val(&v);
            return Some(Ok((CExpr::Lit(v), t)));
        }
        None
    }

    /// Compiles one expression, returning it with its static type.
    pub fn expr(&mut self, e: &Expr) -> Result<(CExpr, ColumnDef), SqlError> {
        let b = Box::new;
        match e {
            Expr::Identifier(i) => {
                let parts = vec![ident_name(i)];
                if i.quote_style.is_none() {
                    if let Some(r) = self.variable(&parts) {
                        return r;
                    }
                }
                self.resolve(&parts)
            }
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<String> = ids.iter().map(ident_name).collect();
                if let Some(r) = self.variable(&parts) {
                    return r;
                }
                self.resolve(&parts)
            }
            Expr::Value(v) => self.literal(&v.value),
            Expr::Nested(inner) => self.expr(inner),
            Expr::TypedString(ts) => {
                let v = match self.literal(&ts.value.value)?.0 {
                    CExpr::Lit(v) => v,
                    _ => Val::Null,
                };
                let target = cast_target(&ts.data_type)?;
                let val = conform_val(&v, &target)?;
                Ok((CExpr::Lit(val), target))
            }
            Expr::UnaryOp { op, expr } => {
                let (x, t) = self.expr(expr)?;
                match op {
                    UnaryOperator::Minus => {
                        let k = match kind(&t) {
                            K::Str => K::Double,
                            K::UInt => K::Int,
                            K::Null => K::Int,
                            k => k,
                        };
                        let out = CExpr::Neg(b(x), k);
                        Ok((self.fold(out), ty_of_kind(k)))
                    }
                    UnaryOperator::Plus => Ok((x, t)),
                    UnaryOperator::Not | UnaryOperator::BangNot => {
                        Ok((self.fold(CExpr::Not(b(x))), ty_int()))
                    }
                    UnaryOperator::BitwiseNot => Ok((self.fold(CExpr::BitNot(b(x))), ty_uint())),
                    _ => Err(unsupported(&e.to_string())),
                }
            }
            Expr::BinaryOp { left, op, right } => {
                let (l, lt) = self.expr(left)?;
                let (r, rt) = self.expr(right)?;
                let ar = |op: ArOp| {
                    let k = arith_kind(op, kind(&lt), kind(&rt));
                    (
                        CExpr::Arith(op, b(l.clone()), b(r.clone()), k, e.to_string()),
                        ty_of_kind(k),
                    )
                };
                let (out, t) = match op {
                    BinaryOperator::Plus => ar(ArOp::Add),
                    BinaryOperator::Minus => ar(ArOp::Sub),
                    BinaryOperator::Multiply => ar(ArOp::Mul),
                    BinaryOperator::Divide => ar(ArOp::Div),
                    BinaryOperator::Modulo => ar(ArOp::Mod),
                    BinaryOperator::MyIntegerDivide | BinaryOperator::DuckIntegerDivide => {
                        ar(ArOp::IntDiv)
                    }
                    BinaryOperator::Eq => (CExpr::Cmp(CmpOp::Eq, b(l), b(r)), ty_int()),
                    BinaryOperator::NotEq => (CExpr::Cmp(CmpOp::Ne, b(l), b(r)), ty_int()),
                    BinaryOperator::Lt => (CExpr::Cmp(CmpOp::Lt, b(l), b(r)), ty_int()),
                    BinaryOperator::LtEq => (CExpr::Cmp(CmpOp::Le, b(l), b(r)), ty_int()),
                    BinaryOperator::Gt => (CExpr::Cmp(CmpOp::Gt, b(l), b(r)), ty_int()),
                    BinaryOperator::GtEq => (CExpr::Cmp(CmpOp::Ge, b(l), b(r)), ty_int()),
                    BinaryOperator::Spaceship => (CExpr::NullEq(b(l), b(r)), ty_int()),
                    BinaryOperator::And => (CExpr::And(b(l), b(r)), ty_int()),
                    // MySQL without PIPES_AS_CONCAT: || is OR.
                    BinaryOperator::Or | BinaryOperator::StringConcat => {
                        (CExpr::Or(b(l), b(r)), ty_int())
                    }
                    BinaryOperator::Xor => (CExpr::Xor(b(l), b(r)), ty_int()),
                    BinaryOperator::BitwiseAnd => (CExpr::Bit(BitOp::And, b(l), b(r)), ty_uint()),
                    BinaryOperator::BitwiseOr => (CExpr::Bit(BitOp::Or, b(l), b(r)), ty_uint()),
                    BinaryOperator::BitwiseXor | BinaryOperator::PGBitwiseXor => {
                        (CExpr::Bit(BitOp::Xor, b(l), b(r)), ty_uint())
                    }
                    BinaryOperator::PGBitwiseShiftLeft => {
                        (CExpr::Bit(BitOp::Shl, b(l), b(r)), ty_uint())
                    }
                    BinaryOperator::PGBitwiseShiftRight => {
                        (CExpr::Bit(BitOp::Shr, b(l), b(r)), ty_uint())
                    }
                    BinaryOperator::Regexp => {
                        return Err(unsupported("REGEXP"));
                    }
                    _ => return Err(unsupported(&format!("operator {op}"))),
                };
                Ok((self.fold(out), t))
            }
            Expr::IsNull(x) => {
                let (x, _) = self.expr(x)?;
                Ok((self.fold(CExpr::IsNull(b(x), false)), ty_int()))
            }
            Expr::IsNotNull(x) => {
                let (x, _) = self.expr(x)?;
                Ok((self.fold(CExpr::IsNull(b(x), true)), ty_int()))
            }
            Expr::IsTrue(x) | Expr::IsNotTrue(x) | Expr::IsFalse(x) | Expr::IsNotFalse(x) => {
                let want = matches!(e, Expr::IsTrue(_) | Expr::IsNotTrue(_));
                let neg = matches!(e, Expr::IsNotTrue(_) | Expr::IsNotFalse(_));
                let (x, _) = self.expr(x)?;
                Ok((self.fold(CExpr::IsBool(b(x), want, neg)), ty_int()))
            }
            Expr::IsUnknown(x) | Expr::IsNotUnknown(x) => {
                let (x, _) = self.expr(x)?;
                let neg = matches!(e, Expr::IsNotUnknown(_));
                Ok((self.fold(CExpr::IsNull(b(x), neg)), ty_int()))
            }
            Expr::IsDistinctFrom(l, r) | Expr::IsNotDistinctFrom(l, r) => {
                let (l, _) = self.expr(l)?;
                let (r, _) = self.expr(r)?;
                let eq = CExpr::NullEq(b(l), b(r));
                let out = if matches!(e, Expr::IsDistinctFrom(..)) {
                    CExpr::Not(b(eq))
                } else {
                    eq
                };
                Ok((self.fold(out), ty_int()))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let (x, _) = self.expr(expr)?;
                let mut items = Vec::new();
                for i in list {
                    items.push(self.expr(i)?.0);
                }
                Ok((self.fold(CExpr::In(b(x), items, *negated)), ty_int()))
            }
            Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let (x, _) = self.expr(expr)?;
                let (cols, rows) = crate::select::run_query(self.ctx, subquery)?;
                if cols.len() != 1 {
                    return Err(operand_columns(1));
                }
                let items = rows
                    .into_iter()
                    .map(|mut r| CExpr::Lit(r.pop().unwrap_or(Val::Null)))
                    .collect();
                Ok((self.fold(CExpr::In(b(x), items, *negated)), ty_int()))
            }
            Expr::Exists { subquery, negated } => {
                let rows = match crate::select::run_query(self.ctx, subquery) {
                    Ok((_, rows)) => rows,
                    // An outer column inside: a correlated subquery.
                    Err(e) if e.code == codes::ER_BAD_FIELD => {
                        return match crate::correlated::exists(self, subquery, *negated) {
                            Some(r) => r.map(|x| (x, ty_int())),
                            None => Err(e),
                        };
                    }
                    Err(e) => return Err(e),
                };
                Ok((CExpr::Lit(Val::bool(rows.is_empty() == *negated)), ty_int()))
            }
            Expr::Subquery(q) => {
                let (cols, mut rows) = crate::select::run_query(self.ctx, q)?;
                if cols.len() != 1 {
                    return Err(operand_columns(1));
                }
                if rows.len() > 1 {
                    return Err(SqlError::new(
                        1242,
                        "21000",
                        "Subquery returns more than 1 row",
                    ));
                }
                let v = rows.pop().and_then(|mut r| r.pop()).unwrap_or(Val::Null);
                Ok((CExpr::Lit(v), derived(cols[0].clone())))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, _) = self.expr(expr)?;
                let (lo, _) = self.expr(low)?;
                let (hi, _) = self.expr(high)?;
                Ok((
                    self.fold(CExpr::Between(b(x), b(lo), b(hi), *negated)),
                    ty_int(),
                ))
            }
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any: false,
            }
            | Expr::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any: false,
            } => {
                let (x, _) = self.expr(expr)?;
                let (p, _) = self.expr(pattern)?;
                let esc = match escape_char {
                    None => '\\',
                    Some(ec) => {
                        let (v, _) = self.expr(ec)?;
                        match v {
                            CExpr::Lit(v) => {
                                v.to_text().and_then(|s| s.chars().next()).unwrap_or('\\')
                            }
                            _ => return Err(SqlError::wrong_arguments("ESCAPE")),
                        }
                    }
                };
                Ok((self.fold(CExpr::Like(b(x), b(p), esc, *negated)), ty_int()))
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(b(self.expr(o)?.0)),
                    None => None,
                };
                let mut whens = Vec::new();
                let mut types = Vec::new();
                for cw in conditions {
                    let (c, _) = self.expr(&cw.condition)?;
                    let (r, rt) = self.expr(&cw.result)?;
                    whens.push((c, r));
                    types.push(rt);
                }
                let els = match else_result {
                    Some(x) => {
                        let (x, t) = self.expr(x)?;
                        types.push(t);
                        Some(b(x))
                    }
                    None => None,
                };
                let refs: Vec<&ColumnDef> = types.iter().collect();
                let t = merge_types(&refs);
                let out = CExpr::Case {
                    operand,
                    whens,
                    els,
                };
                Ok((self.fold(CExpr::Conform(b(out), t.clone())), t))
            }
            Expr::Cast {
                expr, data_type, ..
            } => {
                let (x, _) = self.expr(expr)?;
                let t = cast_target(data_type)?;
                Ok((self.fold(CExpr::Conform(b(x), t.clone())), t))
            }
            Expr::Convert {
                expr,
                data_type: Some(dt),
                ..
            } => {
                let (x, _) = self.expr(expr)?;
                let t = cast_target(dt)?;
                Ok((self.fold(CExpr::Conform(b(x), t.clone())), t))
            }
            Expr::Convert {
                expr,
                data_type: None,
                ..
            } => {
                let (x, _) = self.expr(expr)?;
                Ok((x, ty_str()))
            }
            Expr::Collate { expr, .. } => self.expr(expr),
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                if let Some(f) = substring_from {
                    args.push(self.expr(f)?);
                }
                if let Some(f) = substring_for {
                    args.push(self.expr(f)?);
                }
                self.call("substring", args)
            }
            Expr::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                if let Some(w) = trim_what {
                    args.push(self.expr(w)?);
                } else {
                    args.push((CExpr::Lit(Val::str(" ")), ty_str()));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim_x",
                    Some(ast::TrimWhereField::Trailing) => "rtrim_x",
                    _ => "trim_x",
                };
                self.call(name, args)
            }
            Expr::Position { expr, r#in } => {
                let args = vec![self.expr(expr)?, self.expr(r#in)?];
                self.call("locate", args)
            }
            Expr::Ceil { expr, .. } => {
                let a = vec![self.expr(expr)?];
                self.call("ceil", a)
            }
            Expr::Floor { expr, .. } => {
                let a = vec![self.expr(expr)?];
                self.call("floor", a)
            }
            Expr::Extract { field, expr, .. } => {
                let a = vec![self.expr(expr)?];
                let f = field.to_string().to_ascii_lowercase();
                self.call(&f, a)
            }
            Expr::Function(f) => self.function(f),
            // A charset introducer (`_utf8mb4 X'..'`, `_binary'..'`): the literal's bytes in
            // that character set (the gateway sends text with backslashes this way).
            Expr::Prefixed { prefix, value } if prefix.value.starts_with('_') => {
                let (c, mut d) = self.expr(value)?;
                d.charset = if prefix.value.eq_ignore_ascii_case("_binary") {
                    charset::BINARY
                } else {
                    charset::UTF8MB4_GENERAL_CI
                };
                Ok((c, d))
            }
            Expr::Tuple(_) => Err(operand_columns(1)),
            _ => Err(unsupported(&e.to_string())),
        }
    }

    fn literal(&self, v: &ast::Value) -> Result<(CExpr, ColumnDef), SqlError> {
        use ast::Value as V;
        let (val, t) = match v {
            V::Number(s, _) => number_literal(s),
            V::SingleQuotedString(s)
            | V::DoubleQuotedString(s)
            | V::NationalStringLiteral(s)
            | V::EscapedStringLiteral(s)
            | V::TripleSingleQuotedString(s)
            | V::TripleDoubleQuotedString(s)
            | V::SingleQuotedRawStringLiteral(s)
            | V::DoubleQuotedRawStringLiteral(s) => {
                let mut d = ty_str();
                d.length = s.chars().count() as u32 * 4;
                (Val::str(s), d)
            }
            V::HexStringLiteral(h) => match hex_bytes(h) {
                Some(bytes) => {
                    let mut d = ty_str();
                    d.charset = charset::BINARY;
                    (Val::Str(bytes), d)
                }
                None => return Err(SqlError::syntax(format!("Invalid hex literal '{h}'"))),
            },
            V::SingleQuotedByteStringLiteral(s) | V::DoubleQuotedByteStringLiteral(s) => {
                match bits_bytes(s) {
                    Some(bytes) => {
                        let mut d = ty_str();
                        d.charset = charset::BINARY;
                        (Val::Str(bytes), d)
                    }
                    None => return Err(SqlError::syntax(format!("Invalid bit literal '{s}'"))),
                }
            }
            V::Boolean(x) => {
                let mut d = ty_int();
                d.length = 1;
                (Val::bool(*x), d)
            }
            V::Null => (Val::Null, ty_null()),
            V::Placeholder(p) => {
                let idx: usize = p.trim_start_matches('?').parse().unwrap_or(0);
                match idx.checked_sub(1).and_then(|i| self.ctx.params.get(i)) {
                    Some(v) => wire_to_val(v),
                    None => return Err(SqlError::wrong_arguments("mysqld_stmt_execute")),
                }
            }
            other => return Err(unsupported(&other.to_string())),
        };
        Ok((CExpr::Lit(val), t))
    }

    fn function(&mut self, f: &ast::Function) -> Result<(CExpr, ColumnDef), SqlError> {
        let name = obj_parts(&f.name).join(".").to_ascii_lowercase();
        let (args, distinct, star, clauses) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false, vec![]),
            ast::FunctionArguments::Subquery(_) => return Err(unsupported("function subquery")),
            ast::FunctionArguments::List(l) => {
                let distinct = matches!(
                    l.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut star = false;
                let mut args = Vec::new();
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))
                        | ast::FunctionArg::Named {
                            arg: ast::FunctionArgExpr::Expr(e),
                            ..
                        }
                        | ast::FunctionArg::ExprNamed {
                            arg: ast::FunctionArgExpr::Expr(e),
                            ..
                        } => args.push(e.clone()),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(unsupported(&f.to_string())),
                    }
                }
                (args, distinct, star, l.clauses.clone())
            }
        };
        if let Some(aggf) = agg_fn(&name) {
            return self.aggregate(aggf, &name, args, distinct, star, &clauses);
        }
        if star {
            return Err(SqlError::syntax("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '*)' at line 1".to_string()));
        }
        let mut compiled = Vec::new();
        for a in &args {
            compiled.push(self.expr(a)?);
        }
        self.call(&name, compiled)
    }

    fn call(
        &mut self,
        name: &str,
        args: Vec<(CExpr, ColumnDef)>,
    ) -> Result<(CExpr, ColumnDef), SqlError> {
        let (out, t) = functions::compile(self.ctx, name, args)?;
        Ok((self.fold(out), t))
    }

    fn aggregate(
        &mut self,
        func: AggFn,
        name: &str,
        args: Vec<Expr>,
        distinct: bool,
        star: bool,
        clauses: &[ast::FunctionArgumentClause],
    ) -> Result<(CExpr, ColumnDef), SqlError> {
        if !self.allow_aggs || self.in_agg {
            return Err(SqlError::new(
                codes::ER_INVALID_GROUP_FUNC_USE,
                "HY000",
                "Invalid use of group function",
            ));
        }
        let func = if func == AggFn::Count && star {
            AggFn::CountStar
        } else {
            func
        };
        if func != AggFn::CountStar && args.is_empty() {
            return Err(SqlError::syntax(format!(
                "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ')' at line 1 ({name})"
            )));
        }
        self.in_agg = true;
        let mut cargs = Vec::new();
        let mut types = Vec::new();
        for a in &args {
            match self.expr(a) {
                Ok((c, t)) => {
                    cargs.push(c);
                    types.push(t);
                }
                Err(e) => {
                    self.in_agg = false;
                    return Err(e);
                }
            }
        }
        self.in_agg = false;
        let arg_ty = types.first().cloned().unwrap_or_else(ty_int);
        let out_ty = match func {
            AggFn::Count | AggFn::CountStar => ty_int(),
            AggFn::Sum => match kind(&arg_ty) {
                K::Int | K::UInt | K::Null => ty_dec(0),
                K::Dec(s) => ty_dec(s),
                _ => ty_double(),
            },
            AggFn::Avg => match kind(&arg_ty) {
                K::Int | K::UInt | K::Null => ty_dec(4),
                K::Dec(s) => ty_dec((s + 4).min(30)),
                _ => ty_double(),
            },
            AggFn::Min | AggFn::Max => {
                let mut d = derived(arg_ty.clone());
                d.name.clear();
                d
            }
            AggFn::GroupConcat => {
                let mut d = ty_str();
                d.length = 1024 * 4;
                d
            }
            AggFn::BitAnd | AggFn::BitOr | AggFn::BitXor => ty_uint(),
        };
        let mut separator = b",".to_vec();
        for c in clauses {
            if let ast::FunctionArgumentClause::Separator(v) = c {
                if let Some(t) = crate::types::Val::str(v.to_string().trim_matches('\'')).to_bytes()
                {
                    separator = t;
                }
            }
        }
        self.aggs.push(AggSpec {
            func,
            args: cargs,
            distinct,
            arg_ty,
            out_ty: out_ty.clone(),
            separator,
        });
        Ok((CExpr::Agg(self.aggs.len() - 1), out_ty))
    }

    /// Constant folding: expressions over literals only are evaluated at compile time, which
    /// also makes the PK fast path see `id = -1` or `id = 1+1` as a constant.
    fn fold(&self, e: CExpr) -> CExpr {
        if !children_const(&e) {
            return e;
        }
        if let CExpr::Func(f, _) = &e {
            if !f.foldable() {
                return e;
            }
        }
        let delay = Cell::new(0);
        let env = Env {
            row: &[],
            aggs: &[],
            delay: &delay,
        };
        match eval(&e, &env) {
            Ok(v) => CExpr::Lit(v),
            Err(_) => e,
        }
    }
}

fn children_const(e: &CExpr) -> bool {
    use CExpr::*;
    match e {
        Lit(_) => true,
        Col(_) | Agg(_) => false,
        Neg(a, _) | Not(a) | BitNot(a) | IsNull(a, _) | IsBool(a, _, _) | Conform(a, _) => {
            a.is_const()
        }
        Arith(_, a, b, _, _)
        | Bit(_, a, b)
        | Cmp(_, a, b)
        | NullEq(a, b)
        | And(a, b)
        | Or(a, b)
        | Xor(a, b)
        | Like(a, b, _, _) => a.is_const() && b.is_const(),
        In(a, l, _) => a.is_const() && l.iter().all(|x| x.is_const()),
        Between(a, b, c, _) => a.is_const() && b.is_const() && c.is_const(),
        Case {
            operand,
            whens,
            els,
        } => {
            operand.as_ref().is_none_or(|o| o.is_const())
                && whens.iter().all(|(a, b)| a.is_const() && b.is_const())
                && els.as_ref().is_none_or(|o| o.is_const())
        }
        Func(_, args) => args.iter().all(|a| a.is_const()),
    }
}

fn agg_fn(name: &str) -> Option<AggFn> {
    Some(match name {
        "count" => AggFn::Count,
        "sum" => AggFn::Sum,
        "avg" => AggFn::Avg,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        "group_concat" => AggFn::GroupConcat,
        "bit_and" => AggFn::BitAnd,
        "bit_or" => AggFn::BitOr,
        "bit_xor" => AggFn::BitXor,
        _ => return None,
    })
}

pub fn unsupported(what: &str) -> SqlError {
    SqlError::unsupported(format!(
        "This version of MariaDB doesn't yet support '{what}'"
    ))
}

pub fn operand_columns(n: usize) -> SqlError {
    SqlError::new(
        codes::ER_OPERAND_COLUMNS,
        "21000",
        format!("Operand should contain {n} column(s)"),
    )
}

/// The static type a CAST/CONVERT produces.
pub fn cast_target(dt: &ast::DataType) -> Result<ColumnDef, SqlError> {
    use ast::DataType as D;
    Ok(match dt {
        D::Signed | D::SignedInteger | D::Int(_) | D::Integer(_) | D::BigInt(_) => ty_int(),
        D::Unsigned | D::UnsignedInteger | D::IntUnsigned(_) | D::BigIntUnsigned(_) => ty_uint(),
        D::Decimal(info) | D::Numeric(info) | D::Dec(info) => {
            let s = match info {
                ast::ExactNumberInfo::PrecisionAndScale(_, s) => (*s).clamp(0, 30) as u8,
                _ => 0,
            };
            ty_dec(s)
        }
        D::Double(_) | D::DoublePrecision | D::Float(_) | D::Real | D::Float8 => ty_double(),
        D::Char(_) | D::Varchar(_) | D::Nvarchar(_) | D::Text | D::String(_) | D::Character(_) => {
            ty_str()
        }
        D::Binary(_) | D::Varbinary(_) | D::Blob(_) | D::Bytea => {
            let mut d = ty_str();
            d.charset = charset::BINARY;
            d
        }
        D::Date => crate::catalog::SqlType::Date.column_def(""),
        D::Datetime(f) => {
            crate::catalog::SqlType::DateTime(f.unwrap_or(0).min(6) as u8).column_def("")
        }
        D::Timestamp(f, _) => {
            crate::catalog::SqlType::DateTime(f.unwrap_or(0).min(6) as u8).column_def("")
        }
        D::Time(f, _) => crate::catalog::SqlType::Time(f.unwrap_or(0).min(6) as u8).column_def(""),
        D::JSON => {
            let mut d = ty_str();
            d.col_type = ColumnType::Blob;
            d
        }
        other => return Err(unsupported(&format!("CAST AS {other}"))),
    })
}

fn to_i128(v: &Val) -> i128 {
    match v {
        Val::Int(i) => *i as i128,
        Val::UInt(u) => *u as i128,
        other => other.to_i64().unwrap_or(0) as i128,
    }
}

fn out_of_range(unsigned: bool, text: &str) -> SqlError {
    SqlError::new(
        1690,
        "22003",
        format!(
            "BIGINT {}value is out of range in '{}'",
            if unsigned { "UNSIGNED " } else { "" },
            text
        ),
    )
}

fn arith(op: ArOp, a: Val, b: Val, k: K, text: &str) -> Result<Val, SqlError> {
    if a.is_null() || b.is_null() {
        return Ok(Val::Null);
    }
    match k {
        K::Int | K::UInt | K::Null | K::Str if op != ArOp::IntDiv || (is_int(&a) && is_int(&b)) => {
            let (x, y) = (to_i128(&a), to_i128(&b));
            let r = match op {
                ArOp::Add => x.checked_add(y),
                ArOp::Sub => x.checked_sub(y),
                ArOp::Mul => x.checked_mul(y),
                ArOp::IntDiv | ArOp::Div => {
                    if y == 0 {
                        return Ok(Val::Null);
                    }
                    Some(x / y)
                }
                ArOp::Mod => {
                    if y == 0 {
                        return Ok(Val::Null);
                    }
                    Some(x % y)
                }
            };
            let unsigned = k == K::UInt;
            match r {
                Some(r) if unsigned && (0..=u64::MAX as i128).contains(&r) => {
                    Ok(Val::UInt(r as u64))
                }
                Some(r) if !unsigned && (i64::MIN as i128..=i64::MAX as i128).contains(&r) => {
                    Ok(Val::Int(r as i64))
                }
                _ => Err(out_of_range(unsigned, text)),
            }
        }
        K::Int | K::UInt | K::Null | K::Str => {
            // DIV over non-integers.
            let (x, y) = (a.to_f64().unwrap_or(0.0), b.to_f64().unwrap_or(0.0));
            if y == 0.0 {
                return Ok(Val::Null);
            }
            let q = (x / y).trunc();
            if q.abs() > 9.2e18 {
                return Err(out_of_range(false, text));
            }
            Ok(Val::Int(q as i64))
        }
        K::Dec(s) => {
            let (x, y) = match (a.to_dec(), b.to_dec()) {
                (Some(x), Some(y)) => (x, y),
                _ => return arith(op, a, b, K::Double, text),
            };
            let r = match op {
                ArOp::Add => x.checked_add(y),
                ArOp::Sub => x.checked_sub(y),
                ArOp::Mul => x.checked_mul(y),
                ArOp::Div => {
                    if y.is_zero() {
                        return Ok(Val::Null);
                    }
                    // MySQL divides with 9-digit word precision and only rounds to the static
                    // scale on output, so 1/3*3 is 1.0000, not 0.9999.
                    x.div(y, (s.div_ceil(9) * 9).clamp(9, 30))
                }
                ArOp::Mod => {
                    if y.is_zero() {
                        return Ok(Val::Null);
                    }
                    x.checked_rem(y)
                }
                ArOp::IntDiv => unreachable_intdiv(),
            };
            match r {
                Some(d) => Ok(Val::Dec(d)),
                None => arith(
                    op,
                    Val::Double(x.to_f64()),
                    Val::Double(y.to_f64()),
                    K::Double,
                    text,
                ),
            }
        }
        K::Double => {
            let (x, y) = (a.to_f64().unwrap_or(0.0), b.to_f64().unwrap_or(0.0));
            let r = match op {
                ArOp::Add => x + y,
                ArOp::Sub => x - y,
                ArOp::Mul => x * y,
                ArOp::Div => {
                    if y == 0.0 {
                        return Ok(Val::Null);
                    }
                    x / y
                }
                ArOp::Mod => {
                    if y == 0.0 {
                        return Ok(Val::Null);
                    }
                    x % y
                }
                ArOp::IntDiv => {
                    if y == 0.0 {
                        return Ok(Val::Null);
                    }
                    return Ok(Val::Int((x / y).trunc() as i64));
                }
            };
            if !r.is_finite() {
                return Err(SqlError::new(
                    1690,
                    "22003",
                    format!("DOUBLE value is out of range in '{text}'"),
                ));
            }
            Ok(Val::Double(r))
        }
    }
}

fn unreachable_intdiv() -> Option<Dec> {
    None
}

fn is_int(v: &Val) -> bool {
    matches!(v, Val::Int(_) | Val::UInt(_))
}

/// SQL LIKE with `%`, `_` and an escape character; case-insensitive like the default collation.
pub fn like(text: &[u8], pat: &[u8], esc: char) -> bool {
    let t: Vec<char> = String::from_utf8_lossy(&ci_key_keep_spaces(text))
        .chars()
        .collect();
    let p: Vec<char> = String::from_utf8_lossy(&ci_key_keep_spaces(pat))
        .chars()
        .collect();
    let esc = esc.to_uppercase().next().unwrap_or(esc);
    shardgate_core::sql::like::like_chars(&t, &p, esc)
}

fn ci_key_keep_spaces(b: &[u8]) -> Vec<u8> {
    let n = b.iter().rev().take_while(|c| **c == b' ').count();
    let mut k = ci_key(b);
    k.extend(std::iter::repeat_n(b' ', n));
    k
}

fn cmp_op(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// Evaluates a compiled expression against one row.
pub fn eval(e: &CExpr, env: &Env) -> Result<Val, SqlError> {
    Ok(match e {
        CExpr::Lit(v) => v.clone(),
        CExpr::Col(i) => env.row.get(*i).cloned().unwrap_or(Val::Null),
        CExpr::Agg(i) => env.aggs.get(*i).cloned().unwrap_or(Val::Null),
        CExpr::Neg(x, k) => {
            let v = eval(x, env)?;
            match (v, k) {
                (Val::Null, _) => Val::Null,
                (Val::Int(i), _) => match i.checked_neg() {
                    Some(n) => Val::Int(n),
                    None => return Err(out_of_range(false, &format!("-({i})"))),
                },
                (Val::UInt(u), _) => {
                    let n = -(u as i128);
                    if n < i64::MIN as i128 {
                        return Err(out_of_range(false, &format!("-({u})")));
                    }
                    Val::Int(n as i64)
                }
                (Val::Dec(d), _) => Val::Dec(d.negated()),
                (v, _) => Val::Double(-v.to_f64().unwrap_or(0.0)),
            }
        }
        CExpr::Not(x) => match eval(x, env)?.truth() {
            None => Val::Null,
            Some(b) => Val::bool(!b),
        },
        CExpr::BitNot(x) => match eval(x, env)? {
            Val::Null => Val::Null,
            v => Val::UInt(!(to_i128(&v) as u64)),
        },
        CExpr::Arith(op, a, b, k, text) => arith(*op, eval(a, env)?, eval(b, env)?, *k, text)?,
        CExpr::Bit(op, a, b) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            if x.is_null() || y.is_null() {
                return Ok(Val::Null);
            }
            let (x, y) = (to_i128(&x) as u64, to_i128(&y) as u64);
            Val::UInt(match op {
                BitOp::And => x & y,
                BitOp::Or => x | y,
                BitOp::Xor => x ^ y,
                BitOp::Shl => x.checked_shl(y as u32).unwrap_or(0),
                BitOp::Shr => x.checked_shr(y as u32).unwrap_or(0),
            })
        }
        CExpr::Cmp(op, a, b) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            if x.is_null() || y.is_null() {
                Val::Null
            } else {
                Val::bool(cmp_op(*op, compare(&x, &y)))
            }
        }
        CExpr::NullEq(a, b) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            Val::bool(match (x.is_null(), y.is_null()) {
                (true, true) => true,
                (false, false) => compare(&x, &y) == Ordering::Equal,
                _ => false,
            })
        }
        CExpr::And(a, b) => {
            let x = eval(a, env)?.truth();
            if x == Some(false) {
                return Ok(Val::bool(false));
            }
            let y = eval(b, env)?.truth();
            match (x, y) {
                (_, Some(false)) => Val::bool(false),
                (Some(true), Some(true)) => Val::bool(true),
                _ => Val::Null,
            }
        }
        CExpr::Or(a, b) => {
            let x = eval(a, env)?.truth();
            if x == Some(true) {
                return Ok(Val::bool(true));
            }
            let y = eval(b, env)?.truth();
            match (x, y) {
                (_, Some(true)) => Val::bool(true),
                (Some(false), Some(false)) => Val::bool(false),
                _ => Val::Null,
            }
        }
        CExpr::Xor(a, b) => match (eval(a, env)?.truth(), eval(b, env)?.truth()) {
            (Some(x), Some(y)) => Val::bool(x ^ y),
            _ => Val::Null,
        },
        CExpr::IsNull(x, neg) => Val::bool(eval(x, env)?.is_null() != *neg),
        CExpr::IsBool(x, want, neg) => {
            let t = eval(x, env)?.truth();
            Val::bool((t == Some(*want)) != *neg)
        }
        CExpr::In(x, list, neg) => {
            let v = eval(x, env)?;
            if v.is_null() {
                return Ok(Val::Null);
            }
            let mut saw_null = false;
            for item in list {
                let w = eval(item, env)?;
                if w.is_null() {
                    saw_null = true;
                } else if compare(&v, &w) == Ordering::Equal {
                    return Ok(Val::bool(!*neg));
                }
            }
            if saw_null {
                Val::Null
            } else {
                Val::bool(*neg)
            }
        }
        CExpr::Between(x, lo, hi, neg) => {
            let (v, l, h) = (eval(x, env)?, eval(lo, env)?, eval(hi, env)?);
            if v.is_null() {
                return Ok(Val::Null);
            }
            let ge = if l.is_null() {
                None
            } else {
                Some(compare(&v, &l) != Ordering::Less)
            };
            let le = if h.is_null() {
                None
            } else {
                Some(compare(&v, &h) != Ordering::Greater)
            };
            let r = match (ge, le) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            match r {
                None => Val::Null,
                Some(b) => Val::bool(b != *neg),
            }
        }
        CExpr::Like(x, p, esc, neg) => {
            let (v, pat) = (eval(x, env)?, eval(p, env)?);
            match (v.to_bytes(), pat.to_bytes()) {
                (Some(v), Some(pat)) => Val::bool(like(&v, &pat, *esc) != *neg),
                _ => Val::Null,
            }
        }
        CExpr::Case {
            operand,
            whens,
            els,
        } => {
            let op = match operand {
                Some(o) => Some(eval(o, env)?),
                None => None,
            };
            for (c, r) in whens {
                let cv = eval(c, env)?;
                let hit = match &op {
                    Some(o) => !o.is_null() && !cv.is_null() && compare(o, &cv) == Ordering::Equal,
                    None => cv.truth() == Some(true),
                };
                if hit {
                    return eval(r, env);
                }
            }
            match els {
                Some(e) => eval(e, env)?,
                None => Val::Null,
            }
        }
        CExpr::Func(f, args) => functions::eval(f, args, env)?,
        CExpr::Conform(x, t) => conform_val(&eval(x, env)?, t)?,
    })
}

/// Converts a value to a static type the way CAST and result unification do.
pub fn conform_val(v: &Val, t: &ColumnDef) -> Result<Val, SqlError> {
    if v.is_null() {
        return Ok(Val::Null);
    }
    Ok(match t.col_type {
        ColumnType::Date | ColumnType::NewDate => match crate::time::parse_datetime(v) {
            Some(d) => Val::str(&d.date_string()),
            None => Val::Null,
        },
        ColumnType::DateTime | ColumnType::Timestamp => match crate::time::parse_datetime(v) {
            Some(d) => Val::str(&d.datetime_string(t.decimals)),
            None => Val::Null,
        },
        ColumnType::Time => match crate::time::parse_time(v) {
            Some(x) => Val::str(&crate::time::time_string(x, t.decimals)),
            None => Val::Null,
        },
        _ => match kind(t) {
            K::Int => match v {
                Val::Int(_) => v.clone(),
                Val::UInt(u) => Val::Int(*u as i64),
                Val::Str(b) => {
                    let s = String::from_utf8_lossy(b);
                    let p = crate::types::numeric_prefix(s.trim_start());
                    match p.parse::<i64>() {
                        Ok(i) => Val::Int(i),
                        Err(_) => Val::Int(v.to_i64().unwrap_or(0)),
                    }
                }
                _ => Val::Int(v.to_i64().unwrap_or(0)),
            },
            K::UInt => match v {
                Val::UInt(_) => v.clone(),
                Val::Int(i) => Val::UInt(*i as u64),
                _ => Val::UInt(v.to_i64().unwrap_or(0) as u64),
            },
            K::Dec(s) => match v.to_dec().and_then(|d| d.rescale(s)) {
                Some(d) => Val::Dec(d),
                None => Val::Double(v.to_f64().unwrap_or(0.0)),
            },
            K::Double => {
                if t.col_type == ColumnType::Float {
                    Val::Double(v.to_f64().unwrap_or(0.0) as f32 as f64)
                } else {
                    Val::Double(v.to_f64().unwrap_or(0.0))
                }
            }
            K::Str => Val::Str(v.to_bytes().unwrap_or_default()),
            K::Null => v.clone(),
        },
    })
}

/// The wire value of a result cell, shaped by its column's static type.
pub fn to_wire(v: &Val, t: &ColumnDef) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match t.col_type {
        ColumnType::Bit => {
            let u = to_i128(v) as u64;
            let n = (t.length as usize).div_ceil(8).clamp(1, 8);
            let bytes = u.to_be_bytes();
            return Value::Bytes(bytes::Bytes::copy_from_slice(&bytes[8 - n..]));
        }
        ColumnType::Year => {
            return Value::Bytes(bytes::Bytes::from(format!("{:04}", to_i128(v))));
        }
        _ => {}
    }
    match kind(t) {
        K::Int => match v {
            Val::Int(i) => Value::Int(*i),
            Val::UInt(u) => Value::UInt(*u),
            other => Value::Int(other.to_i64().unwrap_or(0)),
        },
        K::UInt => match v {
            Val::UInt(u) => Value::UInt(*u),
            Val::Int(i) if *i >= 0 => Value::UInt(*i as u64),
            Val::Int(i) => Value::Int(*i),
            other => Value::Int(other.to_i64().unwrap_or(0)),
        },
        K::Dec(s) => {
            let text = match v.to_dec().and_then(|d| d.rescale(s)) {
                Some(d) => d.to_string(),
                None => v.to_text().unwrap_or_default(),
            };
            Value::Bytes(bytes::Bytes::from(text))
        }
        K::Double => {
            let f = v.to_f64().unwrap_or(0.0);
            if t.col_type == ColumnType::Float {
                Value::Float(f as f32)
            } else {
                Value::Double(f)
            }
        }
        K::Str | K::Null => Value::Bytes(bytes::Bytes::from(v.to_bytes().unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like(b"hello", b"h%o", '\\'));
        assert!(like(b"Hello", b"hE_LO", '\\'));
        assert!(!like(b"hello", b"h_o", '\\'));
        assert!(like(b"a%b", b"a\\%b", '\\'));
        assert!(!like(b"axb", b"a\\%b", '\\'));
        assert!(like(b"", b"%", '\\'));
        assert!(like(b"abcabc", b"%abc", '\\'));
        assert!(!like(b"abc ", b"abc", '\\'));
    }
}
