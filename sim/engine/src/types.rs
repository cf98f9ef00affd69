//! Runtime values, exact decimals, and MySQL's coercion/comparison rules.
//!
//! The engine computes on [`Val`], which (unlike the wire `Value`) keeps exact decimals apart
//! from strings so arithmetic follows MySQL's integer → decimal → double ladder. Strings compare
//! with utf8mb4_general_ci-like semantics (case-insensitive, trailing spaces ignored) because
//! that is the default collation every differential test runs under.

use std::cmp::Ordering;

/// Maximum digits carried by [`Dec`] (i128 holds 38 decimal digits safely).
pub const DEC_MAX_DIGITS: u32 = 38;

/// An exact decimal: `m / 10^s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dec {
    pub m: i128,
    pub s: u8,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Dec {
    pub fn from_i64(v: i64) -> Dec {
        Dec { m: v as i128, s: 0 }
    }
    pub fn from_u64(v: u64) -> Dec {
        Dec { m: v as i128, s: 0 }
    }

    /// Parses `-12.3400`, `1e3` is not a decimal (returns None).
    pub fn parse(text: &str) -> Option<Dec> {
        let t = text.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        if body.is_empty() {
            return None;
        }
        let (ip, fp) = match body.find('.') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        if !ip.bytes().all(|b| b.is_ascii_digit()) || !fp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ip = ip.trim_start_matches('0');
        if ip.len() + fp.len() > DEC_MAX_DIGITS as usize {
            return None;
        }
        let mut m: i128 = 0;
        for b in ip.bytes().chain(fp.bytes()) {
            m = m * 10 + (b - b'0') as i128;
        }
        Some(Dec {
            m: if neg { -m } else { m },
            s: fp.len() as u8,
        })
    }

    /// Rescales with MySQL rounding (half away from zero).
    pub fn rescale(self, s: u8) -> Option<Dec> {
        if s == self.s {
            return Some(self);
        }
        if s > self.s {
            let f = pow10((s - self.s) as u32)?;
            return Some(Dec {
                m: self.m.checked_mul(f)?,
                s,
            });
        }
        let f = pow10((self.s - s) as u32)?;
        let q = self.m / f;
        let r = self.m % f;
        let adj = if r.abs() * 2 >= f {
            if self.m < 0 {
                -1
            } else {
                1
            }
        } else {
            0
        };
        Some(Dec { m: q + adj, s })
    }

    /// Truncates toward zero to scale `s`.
    pub fn truncate(self, s: u8) -> Dec {
        if s >= self.s {
            return self.rescale(s).unwrap_or(self);
        }
        let f = pow10((self.s - s) as u32).unwrap_or(1);
        Dec { m: self.m / f, s }
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, u8)> {
        let s = a.s.max(b.s);
        Some((a.rescale(s)?.m, b.rescale(s)?.m, s))
    }

    pub fn checked_add(self, o: Dec) -> Option<Dec> {
        let (a, b, s) = Dec::align(self, o)?;
        Some(Dec {
            m: a.checked_add(b)?,
            s,
        })
    }
    pub fn checked_sub(self, o: Dec) -> Option<Dec> {
        let (a, b, s) = Dec::align(self, o)?;
        Some(Dec {
            m: a.checked_sub(b)?,
            s,
        })
    }
    pub fn checked_mul(self, o: Dec) -> Option<Dec> {
        let s = self.s.checked_add(o.s)?;
        if s > 30 {
            return None;
        }
        Some(Dec {
            m: self.m.checked_mul(o.m)?,
            s,
        })
    }
    /// Division to `scale` digits, rounded half away from zero. None on /0 or overflow.
    pub fn div(self, o: Dec, scale: u8) -> Option<Dec> {
        if o.m == 0 {
            return None;
        }
        // result = (a/10^sa) / (b/10^sb) = a*10^(sb+scale+1-sa) / b, then round one digit.
        let exp = o.s as i32 + scale as i32 + 1 - self.s as i32;
        let (num, den) = if exp >= 0 {
            (self.m.checked_mul(pow10(exp as u32)?)?, o.m)
        } else {
            (self.m, o.m.checked_mul(pow10((-exp) as u32)?)?)
        };
        let q = num / den;
        let r = Dec { m: q, s: scale + 1 };
        r.rescale(scale)
    }
    pub fn checked_rem(self, o: Dec) -> Option<Dec> {
        let (a, b, s) = Dec::align(self, o)?;
        if b == 0 {
            return None;
        }
        Some(Dec { m: a % b, s })
    }
    pub fn negated(self) -> Dec {
        Dec {
            m: -self.m,
            s: self.s,
        }
    }
    pub fn to_f64(self) -> f64 {
        self.m as f64 / 10f64.powi(self.s as i32)
    }
    pub fn cmp_dec(self, o: Dec) -> Ordering {
        match Dec::align(self, o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self
                .to_f64()
                .partial_cmp(&o.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }
    pub fn is_zero(self) -> bool {
        self.m == 0
    }
    /// Integer part (truncated), if it fits.
    pub fn trunc_i128(self) -> i128 {
        match pow10(self.s as u32) {
            Some(f) => self.m / f,
            None => 0,
        }
    }
    /// Number of integer digits.
    pub fn int_digits(self) -> u32 {
        let i = self.trunc_i128().unsigned_abs();
        if i == 0 {
            0
        } else {
            i.ilog10() + 1
        }
    }
    pub fn from_f64(v: f64, scale: u8) -> Option<Dec> {
        if !v.is_finite() {
            return None;
        }
        let s = format!("{:.*}", scale as usize, v);
        Dec::parse(&s)
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        let body = if s == 0 {
            digits
        } else if digits.len() > s {
            format!(
                "{}.{}",
                &digits[..digits.len() - s],
                &digits[digits.len() - s..]
            )
        } else {
            format!("0.{}{}", "0".repeat(s - digits.len()), digits)
        };
        if neg && self.m != 0 {
            write!(f, "-{body}")
        } else {
            write!(f, "{body}")
        }
    }
}

/// A value during evaluation.
#[derive(Clone, Debug)]
pub enum Val {
    Null,
    Int(i64),
    UInt(u64),
    Dec(Dec),
    Double(f64),
    /// Strings, blobs and the canonical text of temporal/json/enum/set values.
    Str(Vec<u8>),
}

impl Val {
    pub fn str(s: &str) -> Val {
        Val::Str(s.as_bytes().to_vec())
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Val::Int(_) | Val::UInt(_) | Val::Dec(_) | Val::Double(_)
        )
    }

    /// Text form (as MySQL would print it), None for NULL.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Val::Null => return None,
            Val::Int(i) => i.to_string(),
            Val::UInt(u) => u.to_string(),
            Val::Dec(d) => d.to_string(),
            Val::Double(d) => {
                let mut v = Vec::new();
                shardgate_core::wire::Value::Double(*d).write_text(&mut v);
                String::from_utf8_lossy(&v).into_owned()
            }
            Val::Str(b) => String::from_utf8_lossy(b).into_owned(),
        })
    }

    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Val::Str(b) => Some(b.clone()),
            other => other.to_text().map(|s| s.into_bytes()),
        }
    }

    /// Numeric value as double (strings parse their numeric prefix, like MySQL).
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(*i as f64),
            Val::UInt(u) => Some(*u as f64),
            Val::Dec(d) => Some(d.to_f64()),
            Val::Double(d) => Some(*d),
            Val::Str(b) => Some(str_to_f64(b).0),
        }
    }

    /// Integer value (rounded like MySQL for decimals/doubles, prefix-parsed for strings).
    pub fn to_i64(&self) -> Option<i64> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(*i),
            Val::UInt(u) => Some(*u as i64),
            Val::Dec(d) => {
                let r = d.rescale(0).map(|d| d.m).unwrap_or(0);
                Some(r.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            }
            Val::Double(d) => Some(d.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64),
            Val::Str(b) => {
                let (f, _) = str_to_f64(b);
                Some(f.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
            }
        }
    }

    /// As exact decimal when possible (doubles go through their shortest text).
    pub fn to_dec(&self) -> Option<Dec> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(Dec::from_i64(*i)),
            Val::UInt(u) => Some(Dec::from_u64(*u)),
            Val::Dec(d) => Some(*d),
            Val::Double(d) => Dec::parse(&format!("{d}")).or_else(|| Dec::from_f64(*d, 10)),
            Val::Str(b) => {
                let s = String::from_utf8_lossy(b);
                let t = numeric_prefix(s.trim_start());
                Dec::parse(t).or_else(|| Dec::from_f64(str_to_f64(b).0, 10))
            }
        }
    }

    /// SQL truth value: None for NULL.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(*i != 0),
            Val::UInt(u) => Some(*u != 0),
            Val::Dec(d) => Some(!d.is_zero()),
            Val::Double(d) => Some(*d != 0.0),
            Val::Str(b) => Some(str_to_f64(b).0 != 0.0),
        }
    }

    pub fn bool(b: bool) -> Val {
        Val::Int(b as i64)
    }
}

/// The longest numeric-looking prefix of `s` (sign, digits, point, exponent).
pub fn numeric_prefix(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let ds = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == ds || (i == ds + 1 && b[ds] == b'.') {
        return &s[..0];
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        let es = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > es {
            i = j;
        }
    }
    &s[..i]
}

/// Parses a string as MySQL does in numeric context: leading spaces, then the longest numeric
/// prefix; returns the value and whether the whole string was numeric.
pub fn str_to_f64(b: &[u8]) -> (f64, bool) {
    let s = String::from_utf8_lossy(b);
    let t = s.trim_start();
    let p = numeric_prefix(t);
    let v = p.parse::<f64>().unwrap_or(0.0);
    let whole = !p.is_empty() && t[p.len()..].trim().is_empty();
    (v, whole)
}

/// Collation key for utf8mb4_general_ci-like comparison: case folded, trailing spaces ignored.
pub fn ci_key(b: &[u8]) -> Vec<u8> {
    let mut end = b.len();
    while end > 0 && b[end - 1] == b' ' {
        end -= 1;
    }
    let b = &b[..end];
    match std::str::from_utf8(b) {
        Ok(s) if s.is_ascii() => s.to_ascii_uppercase().into_bytes(),
        Ok(s) => s
            .chars()
            .map(|c| {
                let u = c.to_uppercase().next().unwrap_or(c);
                fold_accent(u)
            })
            .collect::<String>()
            .into_bytes(),
        Err(_) => b.to_vec(),
    }
}

/// general_ci treats common Latin accented letters as their base letter.
fn fold_accent(c: char) -> char {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'Ç' => 'C',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'Ñ' => 'N',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'O',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'Ý' => 'Y',
        _ => c,
    }
}

/// Compares two non-NULL values with MySQL's rules: numbers numerically, strings by collation,
/// a number against a string as doubles.
pub fn compare(a: &Val, b: &Val) -> Ordering {
    use Val::*;
    match (a, b) {
        (Null, Null) => Ordering::Equal,
        (Null, _) => Ordering::Less,
        (_, Null) => Ordering::Greater,
        (Str(x), Str(y)) => ci_key(x).cmp(&ci_key(y)),
        (Int(x), Int(y)) => x.cmp(y),
        (UInt(x), UInt(y)) => x.cmp(y),
        (Int(x), UInt(y)) => (*x as i128).cmp(&(*y as i128)),
        (UInt(x), Int(y)) => (*x as i128).cmp(&(*y as i128)),
        (Double(_), _) | (_, Double(_)) | (Str(_), _) | (_, Str(_)) => {
            let x = a.to_f64().unwrap_or(0.0);
            let y = b.to_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        _ => match (a.to_dec(), b.to_dec()) {
            (Some(x), Some(y)) => x.cmp_dec(y),
            _ => Ordering::Equal,
        },
    }
}

/// A totally ordered, normalised form of a value: keys of primary/unique indexes, GROUP BY and
/// DISTINCT buckets. Values that compare equal under [`compare`] map to the same key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyPart {
    Null,
    Num(NumKey),
    Str(Vec<u8>),
}

/// Numbers as (integer part, fractional digits stripped of trailing zeros) so 1, 1.0 and 1e0
/// are one key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NumKey {
    int: i128,
    frac: Vec<u8>,
    neg_frac: bool,
}

impl KeyPart {
    pub fn of(v: &Val) -> KeyPart {
        match v {
            Val::Null => KeyPart::Null,
            Val::Int(i) => KeyPart::Num(NumKey {
                int: *i as i128,
                frac: vec![],
                neg_frac: false,
            }),
            Val::UInt(u) => KeyPart::Num(NumKey {
                int: *u as i128,
                frac: vec![],
                neg_frac: false,
            }),
            Val::Dec(d) => dec_key(*d),
            Val::Double(f) => match Val::Double(*f).to_dec() {
                Some(d) => dec_key(d),
                None => KeyPart::Num(NumKey {
                    int: 0,
                    frac: vec![],
                    neg_frac: false,
                }),
            },
            Val::Str(b) => KeyPart::Str(ci_key(b)),
        }
    }
}

fn dec_key(d: Dec) -> KeyPart {
    let f = pow10(d.s as u32).unwrap_or(1);
    let int = d.m / f;
    let rem = (d.m % f).unsigned_abs();
    let mut frac = if d.s == 0 {
        String::new()
    } else {
        format!("{:0width$}", rem, width = d.s as usize)
    };
    while frac.ends_with('0') {
        frac.pop();
    }
    // For negative values, a larger fraction means a smaller number; encode by complement.
    let neg = d.m < 0;
    let frac: Vec<u8> = if neg {
        frac.bytes()
            .map(|c| b'9' - (c - b'0') + b'0')
            .chain([b'9' + 1])
            .collect()
    } else {
        frac.into_bytes()
    };
    let int = if neg && !frac.is_empty() {
        int - 1
    } else {
        int
    };
    KeyPart::Num(NumKey {
        int,
        frac,
        neg_frac: neg,
    })
}

/// Key of a row for a list of values.
pub fn key_of(vals: &[Val]) -> Vec<KeyPart> {
    vals.iter().map(KeyPart::of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let d = |s: &str| Dec::parse(s).unwrap();
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d("-0.05").to_string(), "-0.05");
        assert_eq!(d("1").div(d("2"), 4).unwrap().to_string(), "0.5000");
        assert_eq!(d("2").div(d("3"), 4).unwrap().to_string(), "0.6667");
        assert_eq!(d("-2").div(d("3"), 4).unwrap().to_string(), "-0.6667");
        assert_eq!(d("1.25").rescale(1).unwrap().to_string(), "1.3");
        assert_eq!(d("-1.25").rescale(1).unwrap().to_string(), "-1.3");
        assert_eq!(
            d("1.5").checked_mul(d("2.25")).unwrap().to_string(),
            "3.375"
        );
        assert_eq!(d("1.5").checked_add(d("2")).unwrap().to_string(), "3.5");
        assert!(d("1").div(d("0"), 4).is_none());
        assert_eq!(Dec::parse("abc"), None);
    }

    #[test]
    fn keys_normalise_equal_numbers() {
        assert_eq!(
            KeyPart::of(&Val::Int(1)),
            KeyPart::of(&Val::Dec(Dec { m: 10, s: 1 }))
        );
        assert_eq!(KeyPart::of(&Val::Double(1.0)), KeyPart::of(&Val::UInt(1)));
        assert!(KeyPart::of(&Val::Dec(Dec { m: -15, s: 1 })) < KeyPart::of(&Val::Int(-1)));
        assert!(KeyPart::of(&Val::Dec(Dec { m: -15, s: 1 })) > KeyPart::of(&Val::Int(-2)));
        assert_eq!(
            KeyPart::of(&Val::str("abc ")),
            KeyPart::of(&Val::str("ABC"))
        );
    }

    #[test]
    fn comparisons() {
        assert_eq!(compare(&Val::str("a"), &Val::str("A")), Ordering::Equal);
        assert_eq!(compare(&Val::Int(10), &Val::str("9")), Ordering::Greater);
        assert_eq!(compare(&Val::Int(-1), &Val::UInt(1)), Ordering::Less);
        assert_eq!(str_to_f64(b" 12abc"), (12.0, false));
        assert_eq!(str_to_f64(b"1e2"), (100.0, true));
    }
}
