//! SQL values as they cross the wire, and text-protocol rows.
//!
//! The text protocol is the canonical form: dates, times, decimals, JSON, enums and sets are
//! carried as their text in [`Value::Bytes`]; the binary protocol (see `wire::binary`) converts
//! to and from packed forms using the column type. One representation, one conversion point.

use super::codec::{put_lenenc_str, DecodeResult, Reader};
use bytes::{BufMut, Bytes};
use std::fmt::Write as _;

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Strings, blobs, and the text form of decimals and temporal values.
    Bytes(Bytes),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A string value, as the text protocol carries it (bytes; no charset conversion).
    pub fn text(s: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Appends the text-protocol form (without length prefix). NULL appends nothing.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => {}
            Value::Int(i) => {
                let _ = write!(VecWriter(out), "{i}");
            }
            Value::UInt(u) => {
                let _ = write!(VecWriter(out), "{u}");
            }
            Value::Float(f) => format_float(*f as f64, true, out),
            Value::Double(d) => format_float(*d, false, out),
            Value::Bytes(b) => out.extend_from_slice(b),
        }
    }

    /// The text form as an owned string (tests, transcripts, SQL rendering).
    pub fn to_text(&self) -> Option<String> {
        if self.is_null() {
            return None;
        }
        let mut v = Vec::new();
        self.write_text(&mut v);
        Some(String::from_utf8_lossy(&v).into_owned())
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// MySQL prints floating point numbers in their shortest round-tripping form, with an exponent
/// (`1e20`, `1.5e-7`) outside [1e-5, 1e15]-ish ranges. Rust's `{}` gives the shortest digits;
/// we only switch to exponent notation the way MySQL does.
fn format_float(v: f64, single: bool, out: &mut Vec<u8>) {
    if v.is_nan() || v.is_infinite() {
        out.extend_from_slice(b"NULL");
        return;
    }
    let abs = v.abs();
    let s = if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    if abs != 0.0 && !(1e-5..1e15).contains(&abs) {
        let e = if single {
            format!("{:e}", v as f32)
        } else {
            format!("{v:e}")
        };
        // Rust: 1e20, 1.5e-7 ; MySQL: 1e20, 1.5e-7 — same shape, keep it.
        out.extend_from_slice(e.as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends a text-protocol row payload.
pub fn put_text_row(out: &mut impl BufMut, values: &[Value], scratch: &mut Vec<u8>) {
    for v in values {
        match v {
            Value::Null => out.put_u8(0xfb),
            Value::Bytes(b) => put_lenenc_str(out, b),
            other => {
                scratch.clear();
                other.write_text(scratch);
                put_lenenc_str(out, scratch);
            }
        }
    }
}

/// Iterates the cells of a text-protocol row without copying: `None` is SQL NULL.
#[derive(Clone, Copy, Debug)]
pub struct TextRow<'a> {
    reader: Reader<'a>,
}

impl<'a> TextRow<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        TextRow {
            reader: Reader::new(payload),
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.reader.remaining()
    }

    /// The next cell; `Ok(None)` at the end of the row.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> DecodeResult<Option<Option<&'a [u8]>>> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        self.reader.lenenc_str_or_null().map(Some)
    }

    /// Decodes the whole row into owned values (all non-NULL cells as bytes).
    pub fn to_values(mut self, payload: &Bytes) -> DecodeResult<Vec<Value>> {
        let mut out = Vec::new();
        while let Some(cell) = self.next()? {
            out.push(match cell {
                None => Value::Null,
                Some(b) => Value::Bytes(payload.slice_ref(b)),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn floats_print_like_mysql() {
        let t = |v: Value| v.to_text().unwrap();
        assert_eq!(t(Value::Double(1.5)), "1.5");
        assert_eq!(t(Value::Double(3.0)), "3");
        assert_eq!(t(Value::Double(1e20)), "1e20");
        assert_eq!(t(Value::Double(-0.25)), "-0.25");
        assert_eq!(t(Value::Float(0.1)), "0.1");
        assert_eq!(t(Value::Int(-7)), "-7");
        assert_eq!(t(Value::UInt(u64::MAX)), "18446744073709551615");
    }

    proptest! {
        #[test]
        fn text_rows_round_trip(cells in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)), 0..12)) {
            let values: Vec<Value> = cells.iter().map(|c| match c {
                None => Value::Null,
                Some(b) => Value::Bytes(Bytes::copy_from_slice(b)),
            }).collect();
            let mut out = Vec::new();
            put_text_row(&mut out, &values, &mut Vec::new());
            let payload = Bytes::from(out);
            let back = TextRow::new(&payload).to_values(&payload).unwrap();
            prop_assert_eq!(back, values);
        }
    }
}
