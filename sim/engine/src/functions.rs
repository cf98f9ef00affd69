//! Scalar functions: name → implementation and static result type. Functions whose value is
//! fixed for the statement (NOW(), DATABASE(), VERSION(), ...) become literals at compile time.

use crate::expr::{
    arith_kind, derived, eval as eval_expr, kind, merge_types, ty_dec, ty_double, ty_int,
    ty_of_kind, ty_str, ty_uint, unsupported, ArOp, CExpr, Env, K,
};
use crate::time::DateTime;
use crate::types::{compare, Dec, Val};
use crate::Ctx;
use shardgate_core::wire::ColumnDef;
use shardgate_core::SqlError;
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F {
    Concat,
    ConcatWs,
    Length,
    CharLength,
    Upper,
    Lower,
    Substring,
    Left,
    Right,
    Trim,
    LTrim,
    RTrim,
    Replace,
    Reverse,
    Repeat,
    Lpad,
    Rpad,
    Instr,
    Locate,
    Space,
    Ascii,
    Hex,
    Abs,
    Round,
    Truncate,
    Floor,
    Ceil,
    Sign,
    Pow,
    Sqrt,
    Exp,
    Ln,
    Log10,
    Greatest,
    Least,
    Coalesce,
    IfNull,
    NullIf,
    If,
    IsNull,
    Sleep,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    JsonValid,
    Field,
}

impl F {
    /// Whether a call over constants may be evaluated at compile time.
    pub fn foldable(self) -> bool {
        self != F::Sleep
    }
}

fn arity(name: &str, n: usize, lo: usize, hi: usize) -> Result<(), SqlError> {
    if n < lo || n > hi {
        return Err(SqlError::new(
            1582,
            "42000",
            format!("Incorrect parameter count in the call to native function '{name}'"),
        ));
    }
    Ok(())
}

fn lit(v: Val, t: ColumnDef) -> Result<(CExpr, ColumnDef), SqlError> {
    Ok((CExpr::Lit(v), t))
}

fn datetime_ty(fsp: u8) -> ColumnDef {
    crate::catalog::SqlType::DateTime(fsp).column_def("")
}

/// Compiles a call to a scalar function.
pub fn compile(
    ctx: &Ctx,
    name: &str,
    args: Vec<(CExpr, ColumnDef)>,
) -> Result<(CExpr, ColumnDef), SqlError> {
    let n = args.len();
    let now = DateTime::from_unix_ms(ctx.now_ms);
    let fsp_arg = |args: &Vec<(CExpr, ColumnDef)>| -> u8 {
        match args.first() {
            Some((CExpr::Lit(v), _)) => v.to_i64().unwrap_or(0).clamp(0, 6) as u8,
            _ => 0,
        }
    };
    // Statement constants.
    match name {
        "now" | "current_timestamp" | "localtime" | "localtimestamp" | "sysdate"
        | "utc_timestamp" => {
            arity(name, n, 0, 1)?;
            let f = fsp_arg(&args);
            return lit(Val::str(&now.datetime_string(f)), datetime_ty(f));
        }
        "curdate" | "current_date" | "utc_date" => {
            arity(name, n, 0, 0)?;
            return lit(
                Val::str(&now.date_string()),
                crate::catalog::SqlType::Date.column_def(""),
            );
        }
        "curtime" | "current_time" | "utc_time" => {
            arity(name, n, 0, 1)?;
            let f = fsp_arg(&args);
            let secs = (now.hour * 3600 + now.minute * 60 + now.second) as i64;
            return lit(
                Val::str(&crate::time::time_string((secs, now.micro), f)),
                crate::catalog::SqlType::Time(f).column_def(""),
            );
        }
        "unix_timestamp" => {
            arity(name, n, 0, 1)?;
            if n == 0 {
                return lit(Val::Int((ctx.now_ms / 1000) as i64), ty_int());
            }
        }
        "database" | "schema" => {
            arity(name, n, 0, 0)?;
            let v = match &ctx.sess.database {
                Some(d) => Val::str(d),
                None => Val::Null,
            };
            return lit(v, ty_str());
        }
        "version" => {
            arity(name, n, 0, 0)?;
            return lit(Val::str(&ctx.engine.version), ty_str());
        }
        "connection_id" => {
            arity(name, n, 0, 0)?;
            return lit(Val::UInt(ctx.sess.connection_id as u64), ty_uint());
        }
        "last_insert_id" => {
            arity(name, n, 0, 1)?;
            if n == 0 {
                return lit(Val::UInt(ctx.sess.last_insert_id), ty_uint());
            }
            return Ok((
                args.into_iter()
                    .next()
                    .map(|a| a.0)
                    .unwrap_or(CExpr::Lit(Val::Null)),
                ty_uint(),
            ));
        }
        "user" | "current_user" | "session_user" | "system_user" => {
            arity(name, n, 0, 0)?;
            return lit(Val::str(&format!("{}@localhost", ctx.sess.user)), ty_str());
        }
        "row_count" => {
            arity(name, n, 0, 0)?;
            return lit(Val::Int(ctx.sess.row_count), ty_int());
        }
        "found_rows" => {
            arity(name, n, 0, 0)?;
            return lit(Val::UInt(ctx.sess.found_rows), ty_uint());
        }
        "pi" => {
            arity(name, n, 0, 0)?;
            return lit(Val::Double(std::f64::consts::PI), ty_double());
        }
        "mod" => {
            arity(name, n, 2, 2)?;
            let mut it = args.into_iter();
            let (a, at) = it.next().unwrap_or((CExpr::Lit(Val::Null), ty_int()));
            let (b, bt) = it.next().unwrap_or((CExpr::Lit(Val::Null), ty_int()));
            let k = arith_kind(ArOp::Mod, kind(&at), kind(&bt));
            return Ok((
                CExpr::Arith(ArOp::Mod, Box::new(a), Box::new(b), k, "mod".into()),
                ty_of_kind(k),
            ));
        }
        _ => {}
    }
    let (f, lo, hi) = match name {
        "concat" => (F::Concat, 1, usize::MAX),
        "concat_ws" => (F::ConcatWs, 2, usize::MAX),
        "length" | "octet_length" => (F::Length, 1, 1),
        "char_length" | "character_length" => (F::CharLength, 1, 1),
        "upper" | "ucase" => (F::Upper, 1, 1),
        "lower" | "lcase" => (F::Lower, 1, 1),
        "substring" | "substr" | "mid" => (F::Substring, 2, 3),
        "left" => (F::Left, 2, 2),
        "right" => (F::Right, 2, 2),
        "trim" => (F::Trim, 1, 1),
        "trim_x" => (F::Trim, 2, 2),
        "ltrim" => (F::LTrim, 1, 1),
        "ltrim_x" => (F::LTrim, 2, 2),
        "rtrim" => (F::RTrim, 1, 1),
        "rtrim_x" => (F::RTrim, 2, 2),
        "replace" => (F::Replace, 3, 3),
        "reverse" => (F::Reverse, 1, 1),
        "repeat" => (F::Repeat, 2, 2),
        "lpad" => (F::Lpad, 3, 3),
        "rpad" => (F::Rpad, 3, 3),
        "instr" => (F::Instr, 2, 2),
        "locate" | "position" => (F::Locate, 2, 3),
        "space" => (F::Space, 1, 1),
        "ascii" => (F::Ascii, 1, 1),
        "hex" => (F::Hex, 1, 1),
        "abs" => (F::Abs, 1, 1),
        "round" => (F::Round, 1, 2),
        "truncate" => (F::Truncate, 2, 2),
        "floor" => (F::Floor, 1, 1),
        "ceil" | "ceiling" => (F::Ceil, 1, 1),
        "sign" => (F::Sign, 1, 1),
        "pow" | "power" => (F::Pow, 2, 2),
        "sqrt" => (F::Sqrt, 1, 1),
        "exp" => (F::Exp, 1, 1),
        "ln" => (F::Ln, 1, 1),
        "log10" => (F::Log10, 1, 1),
        "greatest" => (F::Greatest, 2, usize::MAX),
        "least" => (F::Least, 2, usize::MAX),
        "coalesce" => (F::Coalesce, 1, usize::MAX),
        "ifnull" | "nvl" => (F::IfNull, 2, 2),
        "nullif" => (F::NullIf, 2, 2),
        "if" => (F::If, 3, 3),
        "isnull" => (F::IsNull, 1, 1),
        "sleep" => (F::Sleep, 1, 1),
        "year" => (F::Year, 1, 1),
        "month" => (F::Month, 1, 1),
        "day" | "dayofmonth" => (F::Day, 1, 1),
        "hour" => (F::Hour, 1, 1),
        "minute" => (F::Minute, 1, 1),
        "second" => (F::Second, 1, 1),
        "date" => (F::Date, 1, 1),
        "json_valid" => (F::JsonValid, 1, 1),
        "field" => (F::Field, 2, usize::MAX),
        "unix_timestamp" => return unix_ts(args),
        "rand" | "uuid" | "uuid_short" => return Err(unsupported(&format!("{name}()"))),
        _ => {
            let db = ctx.sess.database.clone().unwrap_or_default();
            return Err(SqlError::new(
                shardgate_core::error::codes::ER_SP_DOES_NOT_EXIST,
                "42000",
                format!("FUNCTION {db}.{name} does not exist"),
            ));
        }
    };
    arity(name, n, lo, hi)?;
    let types: Vec<ColumnDef> = args.iter().map(|a| a.1.clone()).collect();
    let t = match f {
        F::Length
        | F::CharLength
        | F::Instr
        | F::Locate
        | F::Ascii
        | F::Sign
        | F::IsNull
        | F::Sleep
        | F::Year
        | F::Month
        | F::Day
        | F::Hour
        | F::Minute
        | F::Second
        | F::JsonValid
        | F::Field => ty_int(),
        F::Abs => match kind(&types[0]) {
            K::Str | K::Null => ty_double(),
            k => ty_of_kind(k),
        },
        F::Round | F::Truncate => {
            let d = match args.get(1) {
                Some((CExpr::Lit(v), _)) => v.to_i64().unwrap_or(0),
                Some(_) => -1,
                None => 0,
            };
            match kind(&types[0]) {
                K::Int | K::UInt => ty_of_kind(kind(&types[0])),
                K::Dec(s) => {
                    if d < 0 && args.get(1).is_some_and(|a| !a.0.is_const()) {
                        ty_dec(s)
                    } else {
                        ty_dec(d.clamp(0, s as i64) as u8)
                    }
                }
                _ => ty_double(),
            }
        }
        F::Floor | F::Ceil => match kind(&types[0]) {
            K::Int | K::Dec(_) | K::Null => ty_int(),
            K::UInt => ty_uint(),
            _ => ty_double(),
        },
        F::Pow | F::Sqrt | F::Exp | F::Ln | F::Log10 => ty_double(),
        F::Greatest | F::Least | F::Coalesce | F::IfNull => {
            let refs: Vec<&ColumnDef> = types.iter().collect();
            merge_types(&refs)
        }
        F::If => merge_types(&[&types[1], &types[2]]),
        F::NullIf => derived(types[0].clone()),
        F::Date => crate::catalog::SqlType::Date.column_def(""),
        _ => ty_str(),
    };
    let cargs: Vec<CExpr> = args.into_iter().map(|a| a.0).collect();
    let call = CExpr::Func(f, cargs);
    let needs_conform = matches!(
        f,
        F::Greatest | F::Least | F::Coalesce | F::IfNull | F::If | F::Round | F::Truncate
    );
    if needs_conform {
        Ok((CExpr::Conform(Box::new(call), t.clone()), t))
    } else {
        Ok((call, t))
    }
}

/// UNIX_TIMESTAMP(x): seconds since the epoch of a datetime (the session time zone is UTC).
fn unix_ts(args: Vec<(CExpr, ColumnDef)>) -> Result<(CExpr, ColumnDef), SqlError> {
    let a = args
        .into_iter()
        .next()
        .map(|a| a.0)
        .unwrap_or(CExpr::Lit(Val::Null));
    Ok((
        CExpr::Func(F::Second, vec![a, CExpr::Lit(Val::str("unix"))]),
        ty_int(),
    ))
}

fn text(v: &Val) -> String {
    v.to_text().unwrap_or_default()
}

fn chars(v: &Val) -> Vec<char> {
    text(v).chars().collect()
}

/// MySQL SUBSTRING positions: 1-based, negative from the end, 0 gives ''.
fn substring(s: &[char], pos: i64, len: Option<i64>) -> String {
    let n = s.len() as i64;
    let start = if pos > 0 {
        pos - 1
    } else if pos < 0 {
        n + pos
    } else {
        return String::new();
    };
    if start < 0 || start >= n {
        return String::new();
    }
    let end = match len {
        Some(l) if l <= 0 => return String::new(),
        Some(l) => (start + l).min(n),
        None => n,
    };
    s[start as usize..end as usize].iter().collect()
}

fn round_dec(d: Dec, places: i64, trunc: bool) -> Dec {
    if places >= d.s as i64 {
        return d;
    }
    if places >= 0 {
        return if trunc {
            d.truncate(places as u8)
        } else {
            d.rescale(places as u8).unwrap_or(d)
        };
    }
    // Negative places: round the integer part.
    let i = if trunc {
        d.truncate(0)
    } else {
        d.rescale(0).unwrap_or(d)
    };
    let f = 10i128.checked_pow((-places) as u32).unwrap_or(i128::MAX);
    let m = if trunc {
        i.m / f * f
    } else {
        let q = i.m / f;
        let r = i.m % f;
        (q + if r.abs() * 2 >= f { i.m.signum() } else { 0 }) * f
    };
    Dec { m, s: 0 }
}

fn round_f64(x: f64, places: i64, trunc: bool) -> f64 {
    let f = 10f64.powi(places as i32);
    let y = x * f;
    let r = if trunc { y.trunc() } else { y.round() };
    r / f
}

fn temporal_part(v: &Val, f: F) -> Val {
    if let Some(dt) = crate::time::parse_datetime(v) {
        return Val::Int(match f {
            F::Year => dt.year,
            F::Month => dt.month as i64,
            F::Day => dt.day as i64,
            F::Hour => dt.hour as i64,
            F::Minute => dt.minute as i64,
            _ => dt.second as i64,
        });
    }
    if let Some((secs, _)) = crate::time::parse_time(v) {
        let a = secs.abs();
        return match f {
            F::Hour => Val::Int(a / 3600),
            F::Minute => Val::Int(a % 3600 / 60),
            F::Second => Val::Int(a % 60),
            _ => Val::Null,
        };
    }
    Val::Null
}

/// Evaluates a function call.
pub fn eval(f: &F, args: &[CExpr], env: &Env) -> Result<Val, SqlError> {
    // Lazily evaluated functions first.
    match f {
        F::If => {
            let c = eval_expr(&args[0], env)?;
            return eval_expr(&args[if c.truth() == Some(true) { 1 } else { 2 }], env);
        }
        F::Coalesce | F::IfNull => {
            for a in args {
                let v = eval_expr(a, env)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Val::Null);
        }
        _ => {}
    }
    let mut v = Vec::with_capacity(args.len());
    for a in args {
        v.push(eval_expr(a, env)?);
    }
    let any_null = v.iter().any(|x| x.is_null());
    let null_in = |i: usize| v.get(i).is_none_or(|x| x.is_null());
    Ok(match f {
        F::Concat => {
            if any_null {
                return Ok(Val::Null);
            }
            let mut out = Vec::new();
            for x in &v {
                out.extend(x.to_bytes().unwrap_or_default());
            }
            Val::Str(out)
        }
        F::ConcatWs => {
            if null_in(0) {
                return Ok(Val::Null);
            }
            let sep = v[0].to_bytes().unwrap_or_default();
            let parts: Vec<Vec<u8>> = v[1..].iter().filter_map(|x| x.to_bytes()).collect();
            Val::Str(parts.join(&sep[..]))
        }
        _ if any_null
            && !matches!(f, F::IsNull | F::NullIf | F::Greatest | F::Least | F::Field) =>
        {
            Val::Null
        }
        F::Length => Val::Int(v[0].to_bytes().map(|b| b.len()).unwrap_or(0) as i64),
        F::CharLength => Val::Int(chars(&v[0]).len() as i64),
        F::Upper => Val::str(&text(&v[0]).to_uppercase()),
        F::Lower => Val::str(&text(&v[0]).to_lowercase()),
        F::Substring => {
            let s = chars(&v[0]);
            let pos = v[1].to_i64().unwrap_or(0);
            let len = v.get(2).map(|x| x.to_i64().unwrap_or(0));
            Val::str(&substring(&s, pos, len))
        }
        F::Left => {
            let s = chars(&v[0]);
            let n = v[1].to_i64().unwrap_or(0).max(0) as usize;
            Val::str(&s.iter().take(n).collect::<String>())
        }
        F::Right => {
            let s = chars(&v[0]);
            let n = (v[1].to_i64().unwrap_or(0).max(0) as usize).min(s.len());
            Val::str(&s[s.len() - n..].iter().collect::<String>())
        }
        F::Trim | F::LTrim | F::RTrim => {
            let mut s = text(&v[0]);
            let pat = v.get(1).map(text).unwrap_or_else(|| " ".into());
            if !pat.is_empty() {
                if *f != F::RTrim {
                    while s.starts_with(&pat) {
                        s = s[pat.len()..].to_string();
                    }
                }
                if *f != F::LTrim {
                    while s.ends_with(&pat) {
                        s.truncate(s.len() - pat.len());
                    }
                }
            }
            Val::str(&s)
        }
        F::Replace => {
            let from = text(&v[1]);
            if from.is_empty() {
                v[0].clone()
            } else {
                Val::str(&text(&v[0]).replace(&from, &text(&v[2])))
            }
        }
        F::Reverse => Val::str(&chars(&v[0]).iter().rev().collect::<String>()),
        F::Repeat => {
            let n = v[1].to_i64().unwrap_or(0).clamp(0, 1 << 20) as usize;
            Val::str(&text(&v[0]).repeat(n))
        }
        F::Lpad | F::Rpad => {
            let s = chars(&v[0]);
            let n = v[1].to_i64().unwrap_or(0);
            if n < 0 {
                return Ok(Val::Null);
            }
            let n = (n as usize).min(1 << 20);
            let pad = chars(&v[2]);
            if s.len() >= n {
                return Ok(Val::str(&s[..n].iter().collect::<String>()));
            }
            if pad.is_empty() {
                return Ok(Val::Null);
            }
            let fill: String = pad.iter().cycle().take(n - s.len()).collect();
            let body: String = s.iter().collect();
            Val::str(&if *f == F::Lpad {
                fill + &body
            } else {
                body + &fill
            })
        }
        F::Instr | F::Locate => {
            let (hay, needle) = if *f == F::Instr {
                (&v[0], &v[1])
            } else {
                (&v[1], &v[0])
            };
            let h: Vec<char> = text(hay).to_lowercase().chars().collect();
            let nd: Vec<char> = text(needle).to_lowercase().chars().collect();
            let start = if *f == F::Locate && v.len() > 2 {
                (v[2].to_i64().unwrap_or(1) - 1).max(0) as usize
            } else {
                0
            };
            if nd.is_empty() {
                return Ok(Val::Int(if start <= h.len() {
                    start as i64 + 1
                } else {
                    0
                }));
            }
            let mut pos = 0;
            if h.len() >= nd.len() {
                for i in start..=h.len() - nd.len() {
                    if h[i..i + nd.len()] == nd[..] {
                        pos = i + 1;
                        break;
                    }
                }
            }
            Val::Int(pos as i64)
        }
        F::Space => Val::str(&" ".repeat(v[0].to_i64().unwrap_or(0).clamp(0, 1 << 20) as usize)),
        F::Ascii => Val::Int(
            v[0].to_bytes()
                .and_then(|b| b.first().copied())
                .unwrap_or(0) as i64,
        ),
        F::Hex => match &v[0] {
            Val::Str(b) => Val::str(&b.iter().map(|x| format!("{x:02X}")).collect::<String>()),
            other => Val::str(&format!("{:X}", other.to_i64().unwrap_or(0))),
        },
        F::Abs => match &v[0] {
            Val::Int(i) => match i.checked_abs() {
                Some(a) => Val::Int(a),
                None => {
                    return Err(SqlError::new(
                        1690,
                        "22003",
                        format!("BIGINT value is out of range in 'abs({i})'"),
                    ))
                }
            },
            Val::UInt(u) => Val::UInt(*u),
            Val::Dec(d) => Val::Dec(Dec {
                m: d.m.abs(),
                s: d.s,
            }),
            other => Val::Double(other.to_f64().unwrap_or(0.0).abs()),
        },
        F::Round | F::Truncate => {
            let places = v
                .get(1)
                .map(|x| x.to_i64().unwrap_or(0))
                .unwrap_or(0)
                .clamp(-60, 30);
            let trunc = *f == F::Truncate;
            match &v[0] {
                Val::Int(_) | Val::UInt(_) if places >= 0 => v[0].clone(),
                Val::Int(_) | Val::UInt(_) | Val::Dec(_) => {
                    let d = v[0].to_dec().unwrap_or(Dec::from_i64(0));
                    Val::Dec(round_dec(d, places, trunc))
                }
                other => Val::Double(round_f64(other.to_f64().unwrap_or(0.0), places, trunc)),
            }
        }
        F::Floor | F::Ceil => match &v[0] {
            Val::Int(_) | Val::UInt(_) => v[0].clone(),
            Val::Dec(d) => {
                let t = d.truncate(0);
                let frac = d.checked_sub(t).map(|x| x.m).unwrap_or(0);
                let adj = if *f == F::Floor && frac < 0 {
                    -1
                } else if *f == F::Ceil && frac > 0 {
                    1
                } else {
                    0
                };
                Val::Int((t.m + adj).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            }
            other => {
                let x = other.to_f64().unwrap_or(0.0);
                Val::Double(if *f == F::Floor { x.floor() } else { x.ceil() })
            }
        },
        F::Sign => {
            let x = v[0].to_f64().unwrap_or(0.0);
            Val::Int(if x > 0.0 {
                1
            } else if x < 0.0 {
                -1
            } else {
                0
            })
        }
        F::Pow => Val::Double(
            v[0].to_f64()
                .unwrap_or(0.0)
                .powf(v[1].to_f64().unwrap_or(0.0)),
        ),
        F::Sqrt | F::Ln | F::Log10 => {
            let x = v[0].to_f64().unwrap_or(0.0);
            if x < 0.0 || (x == 0.0 && *f != F::Sqrt) {
                return Ok(Val::Null);
            }
            Val::Double(match f {
                F::Sqrt => x.sqrt(),
                F::Ln => x.ln(),
                _ => x.log10(),
            })
        }
        F::Exp => Val::Double(v[0].to_f64().unwrap_or(0.0).exp()),
        F::Greatest | F::Least => {
            if any_null {
                return Ok(Val::Null);
            }
            let mut best = v[0].clone();
            for x in &v[1..] {
                let o = compare(x, &best);
                if (*f == F::Greatest && o == Ordering::Greater)
                    || (*f == F::Least && o == Ordering::Less)
                {
                    best = x.clone();
                }
            }
            best
        }
        F::NullIf => {
            if !v[0].is_null() && !v[1].is_null() && compare(&v[0], &v[1]) == Ordering::Equal {
                Val::Null
            } else {
                v[0].clone()
            }
        }
        F::IsNull => Val::bool(v[0].is_null()),
        F::Sleep => {
            let secs = v[0].to_f64().unwrap_or(0.0).max(0.0);
            env.delay.set(env.delay.get() + (secs * 1000.0) as u64);
            Val::Int(0)
        }
        F::Second if v.len() == 2 => match crate::time::parse_datetime(&v[0]) {
            Some(dt) => Val::Int(dt.unix_seconds()),
            None => Val::Null,
        },
        F::Year | F::Month | F::Day | F::Hour | F::Minute | F::Second => temporal_part(&v[0], *f),
        F::Date => match crate::time::parse_datetime(&v[0]) {
            Some(dt) => Val::str(&dt.date_string()),
            None => Val::Null,
        },
        F::JsonValid => Val::bool(json_valid(&v[0].to_bytes().unwrap_or_default())),
        F::Field => {
            if v[0].is_null() {
                return Ok(Val::Int(0));
            }
            let pos = v[1..]
                .iter()
                .position(|x| !x.is_null() && compare(&v[0], x) == Ordering::Equal);
            Val::Int(pos.map(|p| p as i64 + 1).unwrap_or(0))
        }
        F::If | F::Coalesce | F::IfNull => Val::Null,
    })
}

/// A small JSON syntax check (RFC 8259 grammar), enough for JSON columns and JSON_VALID.
pub fn json_valid(b: &[u8]) -> bool {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }
        fn value(&mut self) -> bool {
            self.depth += 1;
            if self.depth > 512 {
                return false;
            }
            self.ws();
            let ok = match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        true
                    } else {
                        loop {
                            self.ws();
                            if !self.string() {
                                break false;
                            }
                            self.ws();
                            if self.b.get(self.i) != Some(&b':') {
                                break false;
                            }
                            self.i += 1;
                            if !self.value() {
                                break false;
                            }
                            self.ws();
                            match self.b.get(self.i) {
                                Some(b',') => self.i += 1,
                                Some(b'}') => {
                                    self.i += 1;
                                    break true;
                                }
                                _ => break false,
                            }
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        true
                    } else {
                        loop {
                            if !self.value() {
                                break false;
                            }
                            self.ws();
                            match self.b.get(self.i) {
                                Some(b',') => self.i += 1,
                                Some(b']') => {
                                    self.i += 1;
                                    break true;
                                }
                                _ => break false,
                            }
                        }
                    }
                }
                Some(b'"') => self.string(),
                Some(b't') => self.word(b"true"),
                Some(b'f') => self.word(b"false"),
                Some(b'n') => self.word(b"null"),
                Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
                _ => false,
            };
            self.depth -= 1;
            ok
        }
        fn word(&mut self, w: &[u8]) -> bool {
            if self.b[self.i..].starts_with(w) {
                self.i += w.len();
                true
            } else {
                false
            }
        }
        fn number(&mut self) -> bool {
            let s = self.i;
            while self.i < self.b.len()
                && matches!(
                    self.b[self.i],
                    b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                )
            {
                self.i += 1;
            }
            std::str::from_utf8(&self.b[s..self.i])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some()
        }
        fn string(&mut self) -> bool {
            if self.b.get(self.i) != Some(&b'"') {
                return false;
            }
            self.i += 1;
            while self.i < self.b.len() {
                match self.b[self.i] {
                    b'"' => {
                        self.i += 1;
                        return true;
                    }
                    b'\\' => self.i += 2,
                    c if c < 0x20 => return false,
                    _ => self.i += 1,
                }
            }
            false
        }
    }
    let mut p = P { b, i: 0, depth: 0 };
    if !p.value() {
        return false;
    }
    p.ws();
    p.i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json() {
        assert!(json_valid(br#"{"a": [1, 2.5, "x", null, true]}"#));
        assert!(!json_valid(b"{a:1}"));
        assert!(!json_valid(b"[1,"));
        assert!(json_valid(b" 3 "));
    }

    #[test]
    fn substrings() {
        let s: Vec<char> = "Quadratically".chars().collect();
        assert_eq!(substring(&s, 5, Some(6)), "ratica");
        assert_eq!(substring(&s, -3, None), "lly");
        assert_eq!(substring(&s, 0, None), "");
    }
}
