//! The vindex trait, the values it maps, and the registry of vindex types.
//!
//! A vindex maps a column value to a keyspace id (the bytes a key range is compared with).
//! Values come in as [`VindexValue`], shardgate's own small enum rather than
//! [`crate::wire::Value`]: the planner hands over SQL literals, which are either numbers
//! (`Int` for anything that fits an i64, `UInt` above that) or strings (`Bytes`), and floats or
//! NULL never map to a keyspace id. [`VindexValue::from_wire`] converts a wire value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::functional::{Binary, BinaryMd5, Hash, Numeric, ReverseBits, XxHash};
use super::lookup::Lookup;

/// A value to map: an SQL integer literal or a string / binary literal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VindexValue {
    Int(i64),
    UInt(u64),
    Bytes(Vec<u8>),
}

impl VindexValue {
    /// Converts a wire value. NULL and floating point values have no keyspace id.
    pub fn from_wire(v: &crate::wire::Value) -> Result<VindexValue, VindexError> {
        use crate::wire::Value;
        match v {
            Value::Int(i) => Ok(VindexValue::Int(*i)),
            Value::UInt(u) => Ok(VindexValue::UInt(*u)),
            Value::Bytes(b) => Ok(VindexValue::Bytes(b.to_vec())),
            Value::Null => Err(VindexError::NullValue),
            Value::Float(_) | Value::Double(_) => {
                Err(VindexError::BadValue("floating point value".into()))
            }
        }
    }

    /// The value as MySQL would send it as text: integers in decimal, bytes as they are.
    /// `xxhash`, `binary` and `binary_md5` hash these bytes (Vitess's `Value.ToBytes()`).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            VindexValue::Int(i) => i.to_string().into_bytes(),
            VindexValue::UInt(u) => u.to_string().into_bytes(),
            VindexValue::Bytes(b) => b.clone(),
        }
    }

    /// The value as a uint64, signed values as two's complement (Vitess's `hash` does the
    /// same). A string must be a decimal integer (`"42"`, `"-1"`); anything else is an error.
    pub fn to_u64(&self) -> Result<u64, VindexError> {
        match self {
            VindexValue::Int(i) => Ok(*i as u64),
            VindexValue::UInt(u) => Ok(*u),
            VindexValue::Bytes(b) => {
                let s = std::str::from_utf8(b).map_err(|_| self.bad())?;
                if let Ok(u) = s.parse::<u64>() {
                    return Ok(u);
                }
                s.parse::<i64>().map(|i| i as u64).map_err(|_| self.bad())
            }
        }
    }

    fn bad(&self) -> VindexError {
        VindexError::BadValue(format!(
            "could not parse value: '{}'",
            String::from_utf8_lossy(&self.to_bytes())
        ))
    }
}

impl From<i64> for VindexValue {
    fn from(v: i64) -> Self {
        VindexValue::Int(v)
    }
}
impl From<u64> for VindexValue {
    fn from(v: u64) -> Self {
        VindexValue::UInt(v)
    }
}
impl From<&str> for VindexValue {
    fn from(v: &str) -> Self {
        VindexValue::Bytes(v.as_bytes().to_vec())
    }
}

/// Why a value could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VindexError {
    /// NULL has no keyspace id.
    NullValue,
    /// The value cannot be interpreted by this vindex (e.g. a non-numeric string for `hash`).
    BadValue(String),
    /// A lookup vindex: mapping needs a query against its lookup table, which shardgate does
    /// not do; the planner must not route by it.
    NeedsLookup { vindex_type: &'static str },
}

impl fmt::Display for VindexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VindexError::NullValue => f.write_str("cannot map NULL to a keyspace id"),
            VindexError::BadValue(m) => f.write_str(m),
            VindexError::NeedsLookup { vindex_type } => write!(
                f,
                "vindex type {vindex_type} needs a lookup query; shardgate cannot route by it"
            ),
        }
    }
}

impl std::error::Error for VindexError {}

/// A vindex: maps a column value to a keyspace id.
pub trait Vindex: Send + Sync + fmt::Debug {
    /// The type as written in the vschema (`hash`, `xxhash`, ...).
    fn type_name(&self) -> &'static str;
    /// True when a value maps to at most one keyspace id (required of a primary vindex).
    fn is_unique(&self) -> bool;
    /// Vitess's cost: lower is preferred when several vindexes could route a query.
    fn cost(&self) -> u32;
    /// The keyspace id of `value`.
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError>;
    /// True for lookup vindexes, which shardgate accepts in a vschema but never routes by
    /// (their `map` returns [`VindexError::NeedsLookup`]).
    fn needs_lookup(&self) -> bool {
        false
    }
    /// How many columns the vindex takes; `None` = any number (lookup vindexes).
    fn column_count(&self) -> Option<usize> {
        Some(1)
    }
}

/// Why a vindex could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateVindexError {
    UnknownType(String),
    /// A required parameter is missing or malformed.
    BadParam {
        param: String,
        message: String,
    },
}

impl fmt::Display for CreateVindexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateVindexError::UnknownType(t) => write!(
                f,
                "unknown vindex type {t:?} (known types: {})",
                VINDEX_TYPES.join(", ")
            ),
            CreateVindexError::BadParam { param, message } => {
                write!(f, "param {param:?}: {message}")
            }
        }
    }
}

impl std::error::Error for CreateVindexError {}

/// Every vindex type `create_vindex` knows, sorted.
pub const VINDEX_TYPES: &[&str] = &[
    "binary",
    "binary_md5",
    "consistent_lookup",
    "consistent_lookup_unique",
    "hash",
    "lookup",
    "lookup_hash",
    "lookup_hash_unique",
    "lookup_unique",
    "numeric",
    "reverse_bits",
    "xxhash",
];

/// Creates a vindex of type `vindex_type`. `name` is the vindex's name in the vschema (used
/// only in messages); `params` are its string parameters. Functional vindexes ignore params.
pub fn create_vindex(
    vindex_type: &str,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Arc<dyn Vindex>, CreateVindexError> {
    let _ = name;
    Ok(match vindex_type {
        "hash" => Arc::new(Hash),
        "xxhash" => Arc::new(XxHash),
        "numeric" => Arc::new(Numeric),
        "binary" => Arc::new(Binary),
        "binary_md5" => Arc::new(BinaryMd5),
        "reverse_bits" => Arc::new(ReverseBits),
        "lookup" => Arc::new(Lookup::new("lookup", params)?),
        "lookup_hash" => Arc::new(Lookup::new("lookup_hash", params)?),
        "consistent_lookup" => Arc::new(Lookup::new("consistent_lookup", params)?),
        "lookup_unique" => Arc::new(Lookup::new("lookup_unique", params)?),
        "lookup_hash_unique" => Arc::new(Lookup::new("lookup_hash_unique", params)?),
        "consistent_lookup_unique" => Arc::new(Lookup::new("consistent_lookup_unique", params)?),
        other => return Err(CreateVindexError::UnknownType(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry() {
        let p = BTreeMap::new();
        for t in [
            "hash",
            "xxhash",
            "numeric",
            "binary",
            "binary_md5",
            "reverse_bits",
        ] {
            let v = create_vindex(t, "v", &p).unwrap();
            assert_eq!(v.type_name(), t);
            assert!(v.is_unique());
            assert!(!v.needs_lookup());
        }
        let e = create_vindex("hashh", "v", &p).unwrap_err();
        assert_eq!(e, CreateVindexError::UnknownType("hashh".into()));
        assert!(e.to_string().starts_with("unknown vindex type \"hashh\""));
        assert!(VINDEX_TYPES.windows(2).all(|w| w[0] < w[1]));
        for t in VINDEX_TYPES {
            // Every listed type is known (lookups may want params, but never "unknown type").
            assert!(!matches!(
                create_vindex(t, "v", &p),
                Err(CreateVindexError::UnknownType(_))
            ));
        }
    }

    #[test]
    fn values() {
        assert_eq!(VindexValue::Int(-1).to_u64(), Ok(u64::MAX));
        assert_eq!(VindexValue::from("42").to_u64(), Ok(42));
        assert_eq!(VindexValue::from("-2").to_u64(), Ok(u64::MAX - 1));
        assert_eq!(
            VindexValue::from("18446744073709551615").to_u64(),
            Ok(u64::MAX)
        );
        assert!(VindexValue::from("abc").to_u64().is_err());
        assert!(VindexValue::from("").to_u64().is_err());
        assert!(VindexValue::Bytes(vec![0xff]).to_u64().is_err());
        assert_eq!(VindexValue::Int(-5).to_bytes(), b"-5");
        assert_eq!(VindexValue::UInt(7).to_bytes(), b"7");
        use crate::wire::Value;
        assert_eq!(
            VindexValue::from_wire(&Value::text("x")),
            Ok(VindexValue::Bytes(b"x".to_vec()))
        );
        assert_eq!(
            VindexValue::from_wire(&Value::Null),
            Err(VindexError::NullValue)
        );
        assert!(VindexValue::from_wire(&Value::Double(1.0)).is_err());
    }
}
