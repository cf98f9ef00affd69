//! Column definitions (ColumnDefinition41), both directions.

use super::codec::{put_lenenc_int, put_lenenc_str, DecodeError, DecodeResult, Reader};
use super::consts::{charset, flag, ColumnType};
use bytes::BufMut;

/// One column of a result set or a prepared statement's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(arbitrary::Arbitrary))]
pub struct ColumnDef {
    pub schema: String,
    pub table: String,
    pub org_table: String,
    pub name: String,
    pub org_name: String,
    pub charset: u16,
    pub length: u32,
    pub col_type: ColumnType,
    pub flags: u16,
    pub decimals: u8,
}

impl ColumnDef {
    /// A column with only a name and type: charset and length follow the type.
    pub fn new(name: impl Into<String>, col_type: ColumnType) -> Self {
        let (cs, length, flags) = match col_type {
            t if t.is_integer() => (charset::BINARY, 20, flag::NUM | flag::BINARY),
            ColumnType::Float | ColumnType::Double => {
                (charset::BINARY, 22, flag::NUM | flag::BINARY)
            }
            ColumnType::NewDecimal | ColumnType::Decimal => {
                (charset::BINARY, 65, flag::NUM | flag::BINARY)
            }
            t if t.is_temporal() => (charset::BINARY, 26, flag::BINARY),
            ColumnType::Blob
            | ColumnType::TinyBlob
            | ColumnType::MediumBlob
            | ColumnType::LongBlob
            | ColumnType::Geometry
            | ColumnType::Bit => (charset::BINARY, 65535, flag::BINARY | flag::BLOB),
            ColumnType::Null => (charset::BINARY, 0, flag::BINARY),
            _ => (charset::UTF8MB4_GENERAL_CI, 1024, 0),
        };
        ColumnDef {
            schema: String::new(),
            table: String::new(),
            org_table: String::new(),
            name: name.into(),
            org_name: String::new(),
            charset: cs,
            length,
            col_type,
            flags,
            decimals: if matches!(col_type, ColumnType::Float | ColumnType::Double) {
                31
            } else {
                0
            },
        }
    }

    pub fn is_unsigned(&self) -> bool {
        self.flags & flag::UNSIGNED != 0
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        put_lenenc_str(out, b"def");
        put_lenenc_str(out, self.schema.as_bytes());
        put_lenenc_str(out, self.table.as_bytes());
        put_lenenc_str(out, self.org_table.as_bytes());
        put_lenenc_str(out, self.name.as_bytes());
        put_lenenc_str(out, self.org_name.as_bytes());
        put_lenenc_int(out, 0x0c);
        out.put_u16_le(self.charset);
        out.put_u32_le(self.length);
        out.put_u8(self.col_type as u8);
        out.put_u16_le(self.flags);
        out.put_u8(self.decimals);
        out.put_u16_le(0);
    }

    pub fn decode(payload: &[u8]) -> DecodeResult<ColumnDef> {
        let mut r = Reader::new(payload);
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let _catalog = r.lenenc_str()?;
        let schema = s(r.lenenc_str()?);
        let table = s(r.lenenc_str()?);
        let org_table = s(r.lenenc_str()?);
        let name = s(r.lenenc_str()?);
        let org_name = s(r.lenenc_str()?);
        let _fixed_len = r.lenenc_int()?;
        let charset = r.u16()?;
        let length = r.u32()?;
        let col_type = ColumnType::from_u8(r.u8()?).ok_or(DecodeError("unknown column type"))?;
        let flags = r.u16()?;
        let decimals = r.u8()?;
        Ok(ColumnDef {
            schema,
            table,
            org_table,
            name,
            org_name,
            charset,
            length,
            col_type,
            flags,
            decimals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbitrary::{Arbitrary, Unstructured};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn column_def_round_trips(seed in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut u = Unstructured::new(&seed);
            let Ok(c) = ColumnDef::arbitrary(&mut u) else { return Ok(()) };
            let mut v = Vec::new();
            c.encode(&mut v);
            prop_assert_eq!(ColumnDef::decode(&v).unwrap(), c);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ColumnDef::decode(&data);
        }
    }
}
