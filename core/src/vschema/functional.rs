//! The functional (computed, no lookup) vindexes, byte-compatible with Vitess.
//!
//! | type           | keyspace id                                                    | cost |
//! |----------------|----------------------------------------------------------------|------|
//! | `hash`         | DES (all-zero key) of the value as uint64, 8 bytes big-endian   | 1    |
//! | `xxhash`       | XXH64 (seed 0) of the value's text, 8 bytes little-endian       | 1    |
//! | `numeric`      | the value as uint64, 8 bytes big-endian                         | 0    |
//! | `binary`       | the value's bytes themselves                                    | 0    |
//! | `binary_md5`   | MD5 of the value's bytes                                        | 1    |
//! | `reverse_bits` | the uint64 with its bits reversed, 8 bytes big-endian           | 1    |
//!
//! "As uint64": signed values as two's complement, strings parsed as decimal integers.
//! "The value's bytes/text": integers as their decimal text, strings as they are.

use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::Des;
use md5::{Digest, Md5};

use super::vindex::{Vindex, VindexError, VindexValue};

fn des_cipher() -> Des {
    // Vitess uses 3DES with a 24-byte all-zero key, which is single DES with a zero key.
    Des::new(&Array::from([0u8; 8]))
}

/// The `hash` vindex: one block of DES with an all-zero key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hash;

impl Hash {
    /// The keyspace id of a uint64.
    pub fn hash_u64(v: u64) -> [u8; 8] {
        let mut block = Array::from(v.to_be_bytes());
        des_cipher().encrypt_block(&mut block);
        block.into()
    }

    /// The inverse of [`Hash::hash_u64`]: the uint64 whose keyspace id is `ksid`.
    /// `None` unless `ksid` is exactly 8 bytes.
    pub fn unhash(ksid: &[u8]) -> Option<u64> {
        let b: [u8; 8] = ksid.try_into().ok()?;
        let mut block = Array::from(b);
        des_cipher().decrypt_block(&mut block);
        let out: [u8; 8] = block.into();
        Some(u64::from_be_bytes(out))
    }
}

impl Vindex for Hash {
    fn type_name(&self) -> &'static str {
        "hash"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        1
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Ok(Hash::hash_u64(value.to_u64()?).to_vec())
    }
}

/// The `xxhash` vindex: XXH64 with seed 0, written little-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct XxHash;

impl Vindex for XxHash {
    fn type_name(&self) -> &'static str {
        "xxhash"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        1
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        let h = xxhash_rust::xxh64::xxh64(&value.to_bytes(), 0);
        Ok(h.to_le_bytes().to_vec())
    }
}

/// The `numeric` vindex: the uint64 itself, big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numeric;

impl Vindex for Numeric {
    fn type_name(&self) -> &'static str {
        "numeric"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        0
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Ok(value.to_u64()?.to_be_bytes().to_vec())
    }
}

/// The `binary` vindex: the bytes themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binary;

impl Vindex for Binary {
    fn type_name(&self) -> &'static str {
        "binary"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        0
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Ok(value.to_bytes())
    }
}

/// The `binary_md5` vindex: the MD5 digest of the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryMd5;

impl Vindex for BinaryMd5 {
    fn type_name(&self) -> &'static str {
        "binary_md5"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        1
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Ok(Md5::digest(value.to_bytes()).to_vec())
    }
}

/// The `reverse_bits` vindex: the uint64 with its bits reversed, big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReverseBits;

impl Vindex for ReverseBits {
    fn type_name(&self) -> &'static str {
        "reverse_bits"
    }
    fn is_unique(&self) -> bool {
        true
    }
    fn cost(&self) -> u32 {
        1
    }
    fn map(&self, value: &VindexValue) -> Result<Vec<u8>, VindexError> {
        Ok(value.to_u64()?.reverse_bits().to_be_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::super::keyrange::hex;
    use super::*;
    use proptest::prelude::*;

    fn h(v: &dyn Vindex, x: impl Into<VindexValue>) -> String {
        hex(&v.map(&x.into()).unwrap())
    }

    #[test]
    fn hash_golden() {
        // DESIGN section 4 / Vitess hash_test.go.
        assert_eq!(h(&Hash, 1i64), "166b40b44aba4bd6");
        assert_eq!(h(&Hash, 2i64), "06e7ea22ce92708f");
        assert_eq!(h(&Hash, 3i64), "4eb190c9a2fa169c");
        assert_eq!(h(&Hash, 0i64), "8ca64de9c1b123a7");
        assert_eq!(h(&Hash, -1i64), "355550b2150e2451");
        assert_eq!(h(&Hash, u64::MAX), "355550b2150e2451");
        assert_eq!(h(&Hash, "1"), "166b40b44aba4bd6");
        assert_eq!(h(&Hash, "-1"), "355550b2150e2451");
        assert!(Hash.map(&"x1".into()).is_err());
        assert_eq!(Hash::unhash(&Hash::hash_u64(1)), Some(1));
        assert_eq!(Hash::unhash(&[0x16, 0x6b]), None);
        let ksid = [0x16, 0x6b, 0x40, 0xb4, 0x4a, 0xba, 0x4b, 0xd6];
        assert_eq!(Hash::unhash(&ksid), Some(1));
    }

    #[test]
    fn xxhash_golden() {
        assert_eq!(h(&XxHash, 1i64), "d46405367612b4b7");
        assert_eq!(h(&XxHash, 1u64), "d46405367612b4b7");
        assert_eq!(h(&XxHash, "1"), "d46405367612b4b7");
        // XXH64("", 0) = 0xef46db3751d8e999, stored little-endian.
        assert_eq!(h(&XxHash, ""), "99e9d85137db46ef");
    }

    #[test]
    fn numeric_binary_md5_reverse() {
        assert_eq!(h(&Numeric, 1i64), "0000000000000001");
        assert_eq!(h(&Numeric, 0x1234u64), "0000000000001234");
        assert_eq!(h(&Numeric, -1i64), "ffffffffffffffff");
        assert_eq!(h(&Binary, "abc"), "616263");
        assert_eq!(h(&Binary, 12i64), "3132");
        assert_eq!(h(&BinaryMd5, ""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(h(&BinaryMd5, "abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(h(&BinaryMd5, 1i64), "c4ca4238a0b923820dcc509a6f75849b");
        assert_eq!(h(&ReverseBits, 1i64), "8000000000000000");
        assert_eq!(h(&ReverseBits, 6u64), "6000000000000000");
        assert_eq!(h(&ReverseBits, 0i64), "0000000000000000");
        assert_eq!(Numeric.cost(), 0);
        assert_eq!(Binary.cost(), 0);
        assert_eq!(Hash.cost(), 1);
    }

    proptest! {
        #[test]
        fn unhash_inverts_hash(v in any::<u64>()) {
            prop_assert_eq!(Hash::unhash(&Hash::hash_u64(v)), Some(v));
        }

        #[test]
        fn map_never_panics(b in proptest::collection::vec(any::<u8>(), 0..20)) {
            let v = VindexValue::Bytes(b);
            for vx in [&Hash as &dyn Vindex, &XxHash, &Numeric, &Binary, &BinaryMd5, &ReverseBits] {
                let _ = vx.map(&v);
            }
        }
    }
}
