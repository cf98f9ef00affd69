//! Ordering and arithmetic on text-protocol cells, as the shards order them: numbers by value,
//! strings by the default (case-insensitive) collation, binary strings by bytes, NULL first.

use crate::wire::consts::charset;
use crate::wire::ColumnDef;
use std::cmp::Ordering;

/// How a column's cells compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellOrder {
    Numeric,
    /// Case-insensitive (ASCII folding; the default collations are `_ci`).
    Text,
    Binary,
}

impl CellOrder {
    pub fn of(col: &ColumnDef) -> CellOrder {
        use crate::wire::consts::ColumnType::*;
        match col.col_type {
            Tiny | Short | Long | LongLong | Int24 | Year | Float | Double | Decimal
            | NewDecimal => CellOrder::Numeric,
            _ if col.charset == charset::BINARY => CellOrder::Binary,
            _ => CellOrder::Text,
        }
    }
}

/// Compares two cells (`None` = NULL, which sorts first).
pub fn compare_cells(a: Option<&[u8]>, b: Option<&[u8]>, order: CellOrder) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match order {
            CellOrder::Numeric => compare_numbers(x, y),
            CellOrder::Text => compare_text(x, y),
            CellOrder::Binary => x.cmp(y),
        },
    }
}

/// Compares under the default `_general_ci` collation without allocating for ASCII text.
pub fn compare_text(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let trim = |s: &[u8]| s.iter().rposition(|c| *c != b' ').map_or(0, |p| p + 1);
        let (a, b) = (&a[..trim(a)], &b[..trim(b)]);
        return a
            .iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.iter().map(u8::to_ascii_lowercase));
    }
    fold_text(a).cmp(&fold_text(b))
}

/// The comparison key of a text value under the default `_general_ci` collations: case and
/// accents folded (`É` = `e`), trailing spaces ignored (PAD SPACE).
pub fn fold_text(s: &[u8]) -> Vec<u8> {
    let end = s.iter().rposition(|c| *c != b' ').map_or(0, |p| p + 1);
    let s = &s[..end];
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let base = match ch {
            'À'..='Å' | 'à'..='å' => 'a',
            'Ç' | 'ç' => 'c',
            'È'..='Ë' | 'è'..='ë' => 'e',
            'Ì'..='Ï' | 'ì'..='ï' => 'i',
            'Ñ' | 'ñ' => 'n',
            'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' => 'o',
            'Ù'..='Ü' | 'ù'..='ü' => 'u',
            'Ý' | 'ý' | 'ÿ' => 'y',
            c => {
                out.extend(c.to_lowercase());
                continue;
            }
        };
        out.push(base);
    }
    out.into_bytes()
}

/// Compares decimal texts exactly (falls back to f64 for exponents).
pub fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let f = |s: &[u8]| {
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            f(a).partial_cmp(&f(b)).unwrap_or(Ordering::Equal)
        }
    }
}

/// An exact decimal: `mantissa / 10^scale`. Enough for SUM/AVG merging of MySQL DECIMAL
/// results (up to 38 digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

impl Decimal {
    pub fn parse(s: &[u8]) -> Option<Decimal> {
        let s = std::str::from_utf8(s).ok()?.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut m: i128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add((c - b'0') as i128)?;
        }
        Some(Decimal {
            mantissa: if neg { -m } else { m },
            scale: frac.len() as u32,
        })
    }

    pub fn from_int(i: i128) -> Decimal {
        Decimal {
            mantissa: i,
            scale: 0,
        }
    }

    fn rescale(self, scale: u32) -> Option<Decimal> {
        if scale >= self.scale {
            let m = self
                .mantissa
                .checked_mul(10i128.checked_pow(scale - self.scale)?)?;
            Some(Decimal { mantissa: m, scale })
        } else {
            None
        }
    }

    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.rescale(scale)?;
        let b = other.rescale(scale)?;
        Some(Decimal {
            mantissa: a.mantissa.checked_add(b.mantissa)?,
            scale,
        })
    }

    /// `self / n` rounded half away from zero to `scale` digits (AVG = SUM / COUNT).
    pub fn div_int(self, n: i128, scale: u32) -> Option<Decimal> {
        if n == 0 {
            return None;
        }
        // self.mantissa / 10^self.scale / n = (mantissa * 10^(scale+1-self.scale)) / n / 10^(scale+1)
        let up = (scale + 1).checked_sub(self.scale)?;
        let num = self.mantissa.checked_mul(10i128.checked_pow(up)?)?;
        let q = num / n;
        let rounded = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
        Some(Decimal {
            mantissa: rounded,
            scale,
        })
    }

    pub fn to_text(self) -> String {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let s = self.scale as usize;
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
        if neg {
            format!("-{body}")
        } else {
            body
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.rescale(scale), other.rescale(scale)) {
            (Some(a), Some(b)) => a.mantissa.cmp(&b.mantissa),
            _ => {
                let f = |d: &Decimal| d.mantissa as f64 / 10f64.powi(d.scale as i32);
                f(self).partial_cmp(&f(other)).unwrap_or(Ordering::Equal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(compare_numbers(b"10", b"9"), Ordering::Greater);
        assert_eq!(compare_numbers(b"-1.50", b"-1.5"), Ordering::Equal);
        assert_eq!(compare_numbers(b"1e3", b"999"), Ordering::Greater);
    }

    #[test]
    fn text_compares_case_insensitively_and_null_first() {
        assert_eq!(
            compare_cells(Some(b"abc"), Some(b"ABC "), CellOrder::Text),
            Ordering::Equal
        );
        assert_eq!(
            compare_cells(Some(b"a"), Some(b"B"), CellOrder::Text),
            Ordering::Less
        );
        assert_eq!(
            compare_cells(Some(b"a"), Some(b"B"), CellOrder::Binary),
            Ordering::Greater
        );
        assert_eq!(
            compare_cells(None, Some(b""), CellOrder::Numeric),
            Ordering::Less
        );
    }

    #[test]
    fn decimal_sums_and_averages_like_mysql() {
        let a = Decimal::parse(b"10.25").unwrap();
        let b = Decimal::parse(b"-0.5").unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_text(), "9.75");
        assert_eq!(
            Decimal::from_int(7).div_int(2, 4).unwrap().to_text(),
            "3.5000"
        );
        assert_eq!(
            Decimal::from_int(2).div_int(3, 4).unwrap().to_text(),
            "0.6667"
        );
        assert_eq!(
            Decimal::from_int(-2).div_int(3, 4).unwrap().to_text(),
            "-0.6667"
        );
        assert_eq!(Decimal::parse(b"0.05").unwrap().to_text(), "0.05");
        assert!(Decimal::parse(b"abc").is_none());
    }
}
