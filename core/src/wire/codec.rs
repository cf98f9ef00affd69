//! Primitive readers and writers: fixed-width little-endian integers, length-encoded
//! integers and strings, NUL-terminated strings.
//!
//! [`Reader`] borrows the payload and never allocates; every read that runs past the end is a
//! [`DecodeError`] (bad input is an error, never a panic).

use bytes::BufMut;
use std::fmt;

/// A payload that does not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed packet: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over one packet payload.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }
    pub fn bytes(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError("truncated"));
        }
        let r = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(r)
    }
    pub fn skip(&mut self, n: usize) -> DecodeResult<()> {
        self.bytes(n).map(|_| ())
    }
    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u16(&mut self) -> DecodeResult<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u24(&mut self) -> DecodeResult<u32> {
        let b = self.bytes(3)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }
    pub fn u32(&mut self) -> DecodeResult<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> DecodeResult<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A length-encoded integer. `0xfb` (NULL in rows) is an error here; see [`Self::lenenc_str_or_null`].
    pub fn lenenc_int(&mut self) -> DecodeResult<u64> {
        match self.u8()? {
            b @ 0..=0xfa => Ok(b as u64),
            0xfc => Ok(self.u16()? as u64),
            0xfd => Ok(self.u24()? as u64),
            0xfe => self.u64(),
            _ => Err(DecodeError("bad length-encoded integer")),
        }
    }
    pub fn lenenc_str(&mut self) -> DecodeResult<&'a [u8]> {
        let n = self.lenenc_int()?;
        if n > self.remaining() as u64 {
            return Err(DecodeError("length-encoded string past end"));
        }
        self.bytes(n as usize)
    }
    /// A text-row cell: `0xfb` is SQL NULL.
    pub fn lenenc_str_or_null(&mut self) -> DecodeResult<Option<&'a [u8]>> {
        if self.peek() == Some(0xfb) {
            self.pos += 1;
            return Ok(None);
        }
        self.lenenc_str().map(Some)
    }
    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub fn null_str(&mut self) -> DecodeResult<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError("missing NUL terminator"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
    /// A NUL-terminated string, or the rest of the payload when the NUL is missing
    /// (some clients omit it on the last field).
    pub fn null_str_or_rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                &rest[..n]
            }
            None => {
                self.pos = self.buf.len();
                rest
            }
        }
    }
}

/// Bytes needed for `n` as a length-encoded integer.
pub fn lenenc_int_len(n: u64) -> usize {
    match n {
        0..=0xfa => 1,
        0xfb..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 9,
    }
}

pub fn put_lenenc_int(out: &mut impl BufMut, n: u64) {
    match n {
        0..=0xfa => out.put_u8(n as u8),
        0xfb..=0xffff => {
            out.put_u8(0xfc);
            out.put_u16_le(n as u16);
        }
        0x1_0000..=0xff_ffff => {
            out.put_u8(0xfd);
            out.put_uint_le(n, 3);
        }
        _ => {
            out.put_u8(0xfe);
            out.put_u64_le(n);
        }
    }
}

pub fn put_lenenc_str(out: &mut impl BufMut, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.put_slice(s);
}

pub fn put_null_str(out: &mut impl BufMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lenenc_int_round_trips(n in any::<u64>()) {
            let mut v = Vec::new();
            put_lenenc_int(&mut v, n);
            prop_assert_eq!(v.len(), lenenc_int_len(n));
            let mut r = Reader::new(&v);
            prop_assert_eq!(r.lenenc_int().unwrap(), n);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn lenenc_str_round_trips(s in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut v = Vec::new();
            put_lenenc_str(&mut v, &s);
            let mut r = Reader::new(&v);
            prop_assert_eq!(r.lenenc_str().unwrap(), &s[..]);
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&data);
            let _ = r.lenenc_str_or_null();
            let _ = r.null_str();
            let _ = r.u64();
            let _ = r.lenenc_int();
        }
    }

    #[test]
    fn truncation_is_an_error() {
        assert!(Reader::new(&[0xfc, 1]).lenenc_int().is_err());
        assert!(Reader::new(&[5, 1, 2]).lenenc_str().is_err());
        assert!(Reader::new(&[0xff]).lenenc_int().is_err());
        assert_eq!(Reader::new(&[0xfb]).lenenc_str_or_null().unwrap(), None);
    }
}
