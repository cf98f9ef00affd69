//! The generic response packets: OK, ERR and EOF, both directions.

use super::codec::{put_lenenc_int, put_lenenc_str, DecodeError, DecodeResult, Reader};
use super::consts::cap;
use crate::error::SqlError;
use bytes::BufMut;

/// The content of an OK packet (also of the OK that ends a result set under DEPRECATE_EOF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(arbitrary::Arbitrary))]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: String,
}

impl OkInfo {
    pub fn affected(n: u64) -> Self {
        OkInfo {
            affected_rows: n,
            ..Default::default()
        }
    }
}

/// Appends an OK payload. `header` is 0x00 for OK, 0xfe for an OK that replaces EOF.
pub fn put_ok(out: &mut impl BufMut, ok: &OkInfo, header: u8, caps: u32) {
    // The common OK (small counts, no info, protocol 41) in one write: every statement ends
    // with one, and each small `put_*` is a capacity check and a copy of its own.
    if ok.info.is_empty()
        && ok.affected_rows <= 0xfa
        && ok.last_insert_id <= 0xfa
        && caps & cap::PROTOCOL_41 != 0
    {
        let [s0, s1] = ok.status.to_le_bytes();
        let [w0, w1] = ok.warnings.to_le_bytes();
        let (rows, id) = (ok.affected_rows as u8, ok.last_insert_id as u8);
        out.put_slice(&[header, rows, id, s0, s1, w0, w1]);
        return;
    }
    out.put_u8(header);
    put_lenenc_int(out, ok.affected_rows);
    put_lenenc_int(out, ok.last_insert_id);
    if caps & cap::PROTOCOL_41 != 0 {
        out.put_u16_le(ok.status);
        out.put_u16_le(ok.warnings);
    } else if caps & cap::TRANSACTIONS != 0 {
        out.put_u16_le(ok.status);
    }
    if !ok.info.is_empty() {
        // Length-encoded, as MariaDB servers always send it: libmariadb reads it so whatever
        // the capabilities (a bare string fails there with 2027), and MySQL's client without
        // SESSION_TRACK takes the rest of the packet, length byte included.
        put_lenenc_str(out, ok.info.as_bytes());
    }
}

/// Decodes an OK (0x00) or OK-as-EOF (0xfe) payload.
pub fn decode_ok(payload: &[u8], caps: u32) -> DecodeResult<OkInfo> {
    let mut r = Reader::new(payload);
    let h = r.u8()?;
    if h != 0x00 && h != 0xfe {
        return Err(DecodeError("not an OK packet"));
    }
    let affected_rows = r.lenenc_int()?;
    let last_insert_id = r.lenenc_int()?;
    let (mut status, mut warnings) = (0, 0);
    if caps & cap::PROTOCOL_41 != 0 {
        status = r.u16()?;
        warnings = r.u16()?;
    } else if caps & cap::TRANSACTIONS != 0 {
        status = r.u16()?;
    }
    let rest = r.rest();
    let info = if !rest.is_empty() {
        // Length-encoded (MariaDB, and MySQL with SESSION_TRACK); a bare string (MySQL
        // without SESSION_TRACK) is taken as is when it doesn't parse as one.
        let mut lr = Reader::new(rest);
        match lr.lenenc_str() {
            Ok(s) => String::from_utf8_lossy(s).into_owned(),
            Err(_) => String::from_utf8_lossy(rest).into_owned(),
        }
    } else {
        String::new()
    };
    Ok(OkInfo {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info,
    })
}

/// Appends an ERR payload (protocol 4.1 form, with SQLSTATE).
pub fn put_err(out: &mut impl BufMut, err: &SqlError) {
    out.put_u8(0xff);
    out.put_u16_le(err.code);
    out.put_u8(b'#');
    out.put_slice(&err.state);
    out.put_slice(err.message.as_bytes());
}

/// Decodes an ERR payload, with or without the SQLSTATE marker.
pub fn decode_err(payload: &[u8]) -> DecodeResult<SqlError> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0xff {
        return Err(DecodeError("not an ERR packet"));
    }
    let code = r.u16()?;
    let mut state = *b"HY000";
    if r.peek() == Some(b'#') && r.remaining() >= 6 {
        r.skip(1)?;
        state.copy_from_slice(r.bytes(5)?);
    }
    let message = String::from_utf8_lossy(r.rest()).into_owned();
    Ok(SqlError {
        code,
        state,
        message,
    })
}

/// Appends a classic EOF payload (protocol 4.1).
pub fn put_eof(out: &mut impl BufMut, warnings: u16, status: u16) {
    let [w0, w1] = warnings.to_le_bytes();
    let [s0, s1] = status.to_le_bytes();
    out.put_slice(&[0xfe, w0, w1, s0, s1]);
}

/// Is this payload a classic EOF? (0xfe with fewer than 9 bytes; longer ones are rows or OK.)
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xfe) && payload.len() < 9
}

/// Decodes a classic EOF into (warnings, status).
pub fn decode_eof(payload: &[u8]) -> DecodeResult<(u16, u16)> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0xfe {
        return Err(DecodeError("not an EOF packet"));
    }
    if r.remaining() < 4 {
        return Ok((0, 0));
    }
    Ok((r.u16()?, r.u16()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbitrary::{Arbitrary, Unstructured};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ok_round_trips(seed in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut u = Unstructured::new(&seed);
            let Ok(ok) = OkInfo::arbitrary(&mut u) else { return Ok(()) };
            for header in [0x00, 0xfe] {
                let mut v = Vec::new();
                put_ok(&mut v, &ok, header, cap::SERVER_DEFAULT);
                prop_assert_eq!(decode_ok(&v, cap::SERVER_DEFAULT).unwrap(), ok.clone());
            }
        }

        #[test]
        fn small_oks_round_trip_and_keep_the_layout(
            rows in 0u64..0x200, id in 0u64..0x200, status in any::<u16>(), warnings in any::<u16>()
        ) {
            let ok = OkInfo { affected_rows: rows, last_insert_id: id, status, warnings, info: String::new() };
            let mut v = Vec::new();
            put_ok(&mut v, &ok, 0x00, cap::SERVER_DEFAULT);
            prop_assert_eq!(decode_ok(&v, cap::SERVER_DEFAULT).unwrap(), ok);
            let lenenc = |n: u64| if n <= 0xfa { 1 } else { 3 };
            prop_assert_eq!(v.len(), 1 + lenenc(rows) + lenenc(id) + 4);
        }

        #[test]
        fn err_round_trips(code in any::<u16>(), msg in "[ -~]{0,40}") {
            let e = SqlError::new(code, "42S02", msg);
            let mut v = Vec::new();
            put_err(&mut v, &e);
            prop_assert_eq!(decode_err(&v).unwrap(), e);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = decode_ok(&data, cap::SERVER_DEFAULT);
            let _ = decode_err(&data);
            let _ = decode_eof(&data);
        }
    }

    /// The info of an OK is length-encoded with and without SESSION_TRACK (what MySQL and
    /// MariaDB servers send), and an empty one is left out.
    #[test]
    fn ok_info_is_length_encoded_as_servers_send_it() {
        let ok = OkInfo {
            affected_rows: 2,
            status: 2,
            info: "Records: 2  Duplicates: 0  Warnings: 0".into(),
            ..OkInfo::default()
        };
        for caps in [
            cap::SERVER_DEFAULT,
            cap::SERVER_DEFAULT & !cap::SESSION_TRACK,
        ] {
            let mut v = Vec::new();
            put_ok(&mut v, &ok, 0x00, caps);
            assert_eq!(v[..8], [0x00, 2, 0, 2, 0, 0, 0, 38]);
            assert_eq!(&v[8..], ok.info.as_bytes());
            let mut v = Vec::new();
            put_ok(&mut v, &OkInfo::affected(1), 0x00, caps);
            assert_eq!(v, [0x00, 1, 0, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn eof_is_recognised_by_length() {
        let mut v = Vec::new();
        put_eof(&mut v, 1, 2);
        assert!(is_eof(&v));
        assert_eq!(v, [0xfe, 1, 0, 2, 0]);
        assert_eq!(decode_eof(&v).unwrap(), (1, 2));
        assert!(!is_eof(&[0xfe, 0, 0, 0, 0, 0, 0, 0, 0]));
    }
}
