//! Connection phase: the v10 handshake, the client's HandshakeResponse41 (and the old
//! HandshakeResponse320 on decode), SSLRequest, and AuthSwitchRequest. The scrambles
//! themselves live in `wire::auth`.
//!
//! Decoders are lenient where real peers differ (MariaDB's extended capabilities in reserved
//! bytes, clients that omit trailing fields or the last NUL) and strict where the bytes
//! cannot be made sense of.

use super::codec::{lenenc_int_len, put_lenenc_int, put_lenenc_str, put_null_str};
use super::codec::{DecodeError, DecodeResult, Reader};
use super::consts::cap;
use bytes::BufMut;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The server's first packet (Protocol::HandshakeV10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeV10 {
    pub server_version: String,
    pub connection_id: u32,
    /// The 20-byte nonce, sent as 8 bytes, then 12 bytes and a NUL.
    pub scramble: [u8; 20],
    pub capabilities: u32,
    /// MariaDB's extended capabilities; sent (and read) only without CLIENT_MYSQL in
    /// `capabilities`, else 0.
    pub mariadb_capabilities: u32,
    pub charset: u8,
    pub status: u16,
    /// Sent when `capabilities` has PLUGIN_AUTH; empty otherwise.
    pub auth_plugin: String,
}

impl HandshakeV10 {
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(10);
        put_null_str(out, self.server_version.as_bytes());
        out.put_u32_le(self.connection_id);
        out.put_slice(&self.scramble[..8]);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.charset);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        let plugin_auth = self.capabilities & cap::PLUGIN_AUTH != 0;
        out.put_u8(if plugin_auth { 21 } else { 0 });
        out.put_bytes(0, 6);
        out.put_u32_le(mariadb_capabilities(
            self.capabilities,
            self.mariadb_capabilities,
        ));
        // The rest of the nonce, NUL-terminated. MySQL and MariaDB send it whether or not
        // SECURE_CONNECTION is announced, and so do we.
        out.put_slice(&self.scramble[8..]);
        out.put_u8(0);
        if plugin_auth {
            put_null_str(out, self.auth_plugin.as_bytes());
        }
    }

    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(payload);
        if r.u8()? != 10 {
            return Err(DecodeError("unsupported handshake protocol version"));
        }
        let server_version = lossy(r.null_str()?);
        let connection_id = r.u32()?;
        let mut scramble = [0u8; 20];
        scramble[..8].copy_from_slice(r.bytes(8)?);
        r.skip(1)?;
        let mut capabilities = u32::from(r.u16()?);
        let mut hs = HandshakeV10 {
            server_version,
            connection_id,
            scramble,
            capabilities,
            mariadb_capabilities: 0,
            charset: 0,
            status: 0,
            auth_plugin: String::new(),
        };
        if r.is_empty() {
            // A pre-4.1 server: nothing after the lower capability flags.
            return Ok(hs);
        }
        hs.charset = r.u8()?;
        hs.status = r.u16()?;
        capabilities |= u32::from(r.u16()?) << 16;
        hs.capabilities = capabilities;
        let auth_len = usize::from(r.u8()?);
        // Reserved; MariaDB puts its extended capabilities in the last 4 bytes.
        r.skip(6)?;
        hs.mariadb_capabilities = mariadb_capabilities(capabilities, r.u32()?);
        if !r.is_empty() {
            let len = auth_len.saturating_sub(8).max(13).min(r.remaining());
            let part2 = r.bytes(len)?;
            let part2 = part2
                .get(..12)
                .ok_or(DecodeError("handshake nonce too short"))?;
            hs.scramble[8..].copy_from_slice(part2);
        } else if capabilities & cap::SECURE_CONNECTION != 0 {
            return Err(DecodeError("handshake nonce missing"));
        }
        if capabilities & cap::PLUGIN_AUTH != 0 {
            // MySQL 5.5.7–5.5.9 forgot the NUL.
            hs.auth_plugin = lossy(r.null_str_or_rest());
        }
        Ok(hs)
    }
}

/// The client's answer to the handshake (Protocol::HandshakeResponse41; the pre-4.1
/// HandshakeResponse320 is accepted on decode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    /// As in [`HandshakeV10`]: sent and read only without CLIENT_MYSQL, else 0.
    pub mariadb_capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    /// Sent when `capabilities` has CONNECT_WITH_DB; an empty name decodes as `None`.
    pub database: Option<String>,
    /// Sent when `capabilities` has PLUGIN_AUTH; an empty name decodes as `None`.
    pub auth_plugin: Option<String>,
    /// Connection attributes, sent when `capabilities` has CONNECT_ATTRS.
    pub attrs: Vec<(String, String)>,
}

/// Length of an SSLRequest, which is the fixed prefix of a HandshakeResponse41.
const RESPONSE41_PREFIX: usize = 32;

/// MariaDB's extended capabilities as they go on the wire: only when CLIENT_MYSQL is clear.
fn mariadb_capabilities(capabilities: u32, mariadb: u32) -> u32 {
    if capabilities & cap::LONG_PASSWORD == 0 {
        mariadb
    } else {
        0
    }
}

/// Appends the fixed 32-byte prefix shared by HandshakeResponse41 and SSLRequest: the
/// filler's last 4 bytes are MariaDB's extended capabilities.
fn put_response_prefix(
    out: &mut impl BufMut,
    capabilities: u32,
    mariadb: u32,
    max_packet: u32,
    charset: u8,
) {
    out.put_u32_le(capabilities);
    out.put_u32_le(max_packet);
    out.put_u8(charset);
    out.put_bytes(0, 19);
    out.put_u32_le(mariadb_capabilities(capabilities, mariadb));
}

/// Appends an SSLRequest payload (the client then starts TLS). `capabilities` should
/// include [`cap::SSL`] and [`cap::PROTOCOL_41`].
pub fn put_ssl_request(
    out: &mut impl BufMut,
    capabilities: u32,
    mariadb: u32,
    max_packet: u32,
    charset: u8,
) {
    put_response_prefix(out, capabilities, mariadb, max_packet, charset);
}

/// Whether a payload received where a HandshakeResponse is expected is an SSLRequest: the
/// 32-byte prefix alone, with CLIENT_SSL set.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == RESPONSE41_PREFIX
        && payload
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .is_some_and(|caps| caps & cap::SSL != 0)
}

impl HandshakeResponse {
    /// Encodes per `capabilities` (fields whose flag is absent are not sent; a `None`
    /// database or plugin under its flag is sent empty). Without
    /// PLUGIN_AUTH_LENENC_CLIENT_DATA the auth response has a one-byte length (at most 255
    /// bytes are sent) under SECURE_CONNECTION, and is NUL-terminated otherwise.
    pub fn encode(&self, out: &mut impl BufMut) {
        let caps = self.capabilities;
        put_response_prefix(
            out,
            caps,
            self.mariadb_capabilities,
            self.max_packet,
            self.charset,
        );
        put_null_str(out, self.user.as_bytes());
        if caps & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_str(out, &self.auth_response);
        } else if caps & cap::SECURE_CONNECTION != 0 {
            let n = self.auth_response.len().min(255);
            out.put_u8(n as u8);
            out.put_slice(&self.auth_response[..n]);
        } else {
            put_null_str(out, &self.auth_response);
        }
        if caps & cap::CONNECT_WITH_DB != 0 {
            put_null_str(out, self.database.as_deref().unwrap_or("").as_bytes());
        }
        if caps & cap::PLUGIN_AUTH != 0 {
            put_null_str(out, self.auth_plugin.as_deref().unwrap_or("").as_bytes());
        }
        if caps & cap::CONNECT_ATTRS != 0 {
            let lenenc = |s: &str| lenenc_int_len(s.len() as u64) + s.len();
            let total: usize = self.attrs.iter().map(|(k, v)| lenenc(k) + lenenc(v)).sum();
            put_lenenc_int(out, total as u64);
            for (k, v) in &self.attrs {
                put_lenenc_str(out, k.as_bytes());
                put_lenenc_str(out, v.as_bytes());
            }
        }
    }

    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(payload);
        let low = r.u16()?;
        if u32::from(low) & cap::PROTOCOL_41 == 0 {
            return Self::decode_320(low, r);
        }
        let capabilities = u32::from(low) | (u32::from(r.u16()?) << 16);
        let max_packet = r.u32()?;
        let charset = r.u8()?;
        // Filler; MariaDB puts its extended capabilities in the last 4 bytes.
        r.skip(19)?;
        let mariadb = mariadb_capabilities(capabilities, r.u32()?);
        let user = lossy(r.null_str_or_rest());
        let mut resp = HandshakeResponse {
            capabilities,
            mariadb_capabilities: mariadb,
            max_packet,
            charset,
            user,
            auth_response: Vec::new(),
            database: None,
            auth_plugin: None,
            attrs: Vec::new(),
        };
        if r.is_empty() {
            return Ok(resp);
        }
        resp.auth_response = if capabilities & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_str()?.to_vec()
        } else if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8()?);
            r.bytes(n)?.to_vec()
        } else {
            r.null_str_or_rest().to_vec()
        };
        if capabilities & cap::CONNECT_WITH_DB != 0 && !r.is_empty() {
            resp.database = Some(lossy(r.null_str_or_rest())).filter(|s| !s.is_empty());
        }
        if capabilities & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
            resp.auth_plugin = Some(lossy(r.null_str_or_rest())).filter(|s| !s.is_empty());
        }
        if capabilities & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
            let total = r.lenenc_int()?;
            if total > r.remaining() as u64 {
                return Err(DecodeError("connection attributes past end"));
            }
            let mut a = Reader::new(r.bytes(total as usize)?);
            while !a.is_empty() {
                let k = lossy(a.lenenc_str()?);
                let v = lossy(a.lenenc_str()?);
                resp.attrs.push((k, v));
            }
        }
        // Anything after (e.g. MySQL 8's zstd compression level) is ignored.
        Ok(resp)
    }

    /// HandshakeResponse320: 2-byte capabilities, 3-byte max packet, user, then the auth
    /// response (NUL-terminated when a database follows, else the rest of the packet).
    fn decode_320(low: u16, mut r: Reader<'_>) -> DecodeResult<Self> {
        let capabilities = u32::from(low);
        let max_packet = r.u24()?;
        let user = lossy(r.null_str_or_rest());
        let (auth_response, database) = if capabilities & cap::CONNECT_WITH_DB != 0 {
            let auth = r.null_str_or_rest().to_vec();
            let db = Some(lossy(r.null_str_or_rest())).filter(|s| !s.is_empty());
            (auth, db)
        } else {
            (r.rest().to_vec(), None)
        };
        Ok(HandshakeResponse {
            capabilities,
            mariadb_capabilities: 0,
            max_packet,
            charset: 0,
            user,
            auth_response,
            database,
            auth_plugin: None,
            attrs: Vec::new(),
        })
    }
}

/// Protocol::AuthSwitchRequest: the server asks the client to authenticate again with
/// another plugin and nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin: String,
    /// Plugin data (the nonce), without the trailing NUL the server sends after it.
    pub data: Vec<u8>,
}

impl AuthSwitchRequest {
    /// `0xfe`, the plugin name NUL-terminated, the data and a trailing NUL (as MySQL sends
    /// its 20-byte nonces).
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(0xfe);
        put_null_str(out, self.plugin.as_bytes());
        out.put_slice(&self.data);
        out.put_u8(0);
    }

    /// The inverse of [`Self::encode`]; one trailing NUL, if present, is stripped from the
    /// data. A bare `0xfe` (the pre-4.1 switch to the old password scheme) decodes with an
    /// empty plugin name.
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0xfe {
            return Err(DecodeError("not an auth switch request"));
        }
        let plugin = lossy(r.null_str_or_rest());
        let data = r.rest();
        let data = data.strip_suffix(&[0]).unwrap_or(data);
        Ok(AuthSwitchRequest {
            plugin,
            data: data.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::auth;
    use crate::wire::consts::{charset, mariadb_cap};
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    /// The first packet of MariaDB 10.11.19 (Debian 12), captured on a socket (payload only,
    /// the 4-byte packet header removed).
    const MARIADB_GREETING: &str = "
        0a 35 2e 35 2e 35 2d 31 30 2e 31 31 2e 31 39 2d 4d 61 72 69 61 44 42 2d 30 2b 64 65
        62 31 32 75 31 00 05 00 00 00 51 60 71 36 56 31 30 3e 00 fe f7 08 02 00 ff 81 15 00
        00 00 00 00 00 1d 00 00 00 24 3b 3a 50 66 2f 56 46 3a 2f 7c 44 00 6d 79 73 71 6c 5f
        6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64 00";

    /// The `mariadb` 10.11 CLI's answer to that greeting (user `sg`, password `secret`,
    /// database `testdb`), captured through a proxy.
    const MARIADB_CLI_RESPONSE: &str = "
        8c a2 bf 00 00 00 00 01 21 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        1d 00 00 00 73 67 00 14 98 b8 cd b3 19 f4 7e 9b d8 d0 4f df d5 51 ba 2f 01 e8 c0 72
        74 65 73 74 64 62 00 6d 79 73 71 6c 5f 6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64
        00 7e 03 5f 6f 73 05 4c 69 6e 75 78 0c 5f 63 6c 69 65 6e 74 5f 6e 61 6d 65 0a 6c 69
        62 6d 61 72 69 61 64 62 04 5f 70 69 64 04 38 36 35 36 0f 5f 63 6c 69 65 6e 74 5f 76
        65 72 73 69 6f 6e 06 33 2e 33 2e 32 30 09 5f 70 6c 61 74 66 6f 72 6d 06 78 38 36 5f
        36 34 0c 70 72 6f 67 72 61 6d 5f 6e 61 6d 65 05 6d 79 73 71 6c 0c 5f 73 65 72 76 65
        72 5f 68 6f 73 74 09 31 32 37 2e 30 2e 30 2e 31";

    /// MySQL 8.0.32's greeting, from a published byte-level walkthrough of a connection.
    const MYSQL8_GREETING: &str = "
        0a 38 2e 30 2e 33 32 00 08 00 00 00 1c 46 19 46 59 76 40 4b 00 ff ff ff 02 00 ff df
        15 00 00 00 00 00 00 00 00 00 00 3f 71 34 71 53 45 5e 5d 22 7a 32 3d 00 63 61 63 68
        69 6e 67 5f 73 68 61 32 5f 70 61 73 73 77 6f 72 64 00";

    /// The SSLRequest and HandshakeResponse41 (1-byte auth length) of the same walkthrough.
    const MYSQL8_SSL_REQUEST: &str = "
        08 aa 0a 00 ff ff ff 00 e0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00";
    const MYSQL8_RESPONSE: &str = "
        08 aa 0a 00 ff ff ff 00 e0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 72 6f 6f 74 00 20 38 24 94 b7 75 30 09 4f 7a a0 35 1e ee a1 3e b2 e5 fe
        45 7f 1b b4 d9 40 72 54 d3 a9 93 da eb 55 74 65 73 74 00 63 61 63 68 69 6e 67 5f 73
        68 61 32 5f 70 61 73 73 77 6f 72 64 00";

    #[test]
    fn decodes_a_real_mariadb_greeting() {
        let hs = HandshakeV10::decode(&hex(MARIADB_GREETING)).unwrap();
        assert_eq!(hs.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(hs.connection_id, 5);
        assert_eq!(&hs.scramble, b"Q`q6V10>$;:Pf/VF:/|D");
        assert_eq!(hs.capabilities, 0x81ff_f7fe);
        assert!(hs.capabilities & cap::PLUGIN_AUTH != 0);
        assert_eq!(hs.charset, 8);
        assert_eq!(hs.status, 2);
        assert_eq!(hs.auth_plugin, auth::NATIVE_PASSWORD);
        // CLIENT_MYSQL clear: the extended capabilities follow, metadata caching among them.
        assert_eq!(hs.capabilities & cap::LONG_PASSWORD, 0);
        assert_ne!(hs.mariadb_capabilities & mariadb_cap::CACHE_METADATA, 0);
        let mut v = Vec::new();
        hs.encode(&mut v);
        assert_eq!(v, hex(MARIADB_GREETING));
    }

    #[test]
    fn decodes_a_real_mariadb_client_response_and_its_password() {
        let hs = HandshakeV10::decode(&hex(MARIADB_GREETING)).unwrap();
        let resp = HandshakeResponse::decode(&hex(MARIADB_CLI_RESPONSE)).unwrap();
        assert_eq!(resp.capabilities, 0x00bf_a28c);
        assert_eq!(resp.max_packet, 1 << 24);
        assert_eq!(resp.charset, charset::UTF8_GENERAL_CI as u8);
        assert_eq!(resp.user, "sg");
        assert_eq!(resp.database.as_deref(), Some("testdb"));
        assert_eq!(resp.auth_plugin.as_deref(), Some(auth::NATIVE_PASSWORD));
        assert_eq!(resp.attrs.len(), 7);
        assert_eq!(resp.attrs[0], ("_os".to_string(), "Linux".to_string()));
        assert_eq!(
            resp.attrs[6],
            ("_server_host".to_string(), "127.0.0.1".to_string())
        );
        assert!(auth::verify_native(
            b"secret",
            &hs.scramble,
            &resp.auth_response
        ));
        assert!(!auth::verify_native(
            b"wrong",
            &hs.scramble,
            &resp.auth_response
        ));
        assert!(!is_ssl_request(&hex(MARIADB_CLI_RESPONSE)));
        // Our encoding of it is byte for byte the client's, MariaDB's extended capabilities
        // in the filler included (the CLI asks for metadata caching among them).
        assert_ne!(resp.mariadb_capabilities & mariadb_cap::CACHE_METADATA, 0);
        let mut v = Vec::new();
        resp.encode(&mut v);
        assert_eq!(v, hex(MARIADB_CLI_RESPONSE));
    }

    #[test]
    fn decodes_mysql8_greeting_and_response() {
        let hs = HandshakeV10::decode(&hex(MYSQL8_GREETING)).unwrap();
        assert_eq!(hs.server_version, "8.0.32");
        assert_eq!(hs.connection_id, 8);
        assert_eq!(hs.charset, 0xff);
        assert_eq!(hs.capabilities, 0xdfff_ffff);
        assert_eq!(hs.auth_plugin, auth::CACHING_SHA2);
        let mut v = Vec::new();
        hs.encode(&mut v);
        assert_eq!(v, hex(MYSQL8_GREETING));

        assert!(is_ssl_request(&hex(MYSQL8_SSL_REQUEST)));
        let mut ssl = Vec::new();
        put_ssl_request(&mut ssl, 0x000a_aa08, 0, 0x00ff_ffff, 0xe0);
        assert_eq!(ssl, hex(MYSQL8_SSL_REQUEST));

        let resp = HandshakeResponse::decode(&hex(MYSQL8_RESPONSE)).unwrap();
        assert!(!is_ssl_request(&hex(MYSQL8_RESPONSE)));
        assert_eq!(resp.user, "root");
        assert_eq!(resp.database.as_deref(), Some("test"));
        assert_eq!(resp.auth_plugin.as_deref(), Some(auth::CACHING_SHA2));
        assert_eq!(resp.auth_response.len(), 32);
        assert!(auth::verify_sha2(
            b"test",
            &hs.scramble,
            &resp.auth_response
        ));
        let mut v = Vec::new();
        resp.encode(&mut v);
        assert_eq!(v, hex(MYSQL8_RESPONSE));
    }

    #[test]
    fn lenient_with_short_responses() {
        let mut v = Vec::new();
        put_response_prefix(
            &mut v,
            cap::PROTOCOL_41 | cap::SECURE_CONNECTION | cap::CONNECT_WITH_DB | cap::PLUGIN_AUTH,
            0,
            1 << 24,
            45,
        );
        v.extend_from_slice(b"bob");
        // No NUL after the user, nothing after it.
        let r = HandshakeResponse::decode(&v).unwrap();
        assert_eq!(r.user, "bob");
        assert!(r.auth_response.is_empty());
        assert_eq!(r.database, None);
        // User and an empty auth response, nothing more.
        v.extend_from_slice(&[0, 0]);
        let r = HandshakeResponse::decode(&v).unwrap();
        assert_eq!(
            (r.user.as_str(), r.database, r.auth_plugin),
            ("bob", None, None)
        );
        // A database without its NUL.
        v.extend_from_slice(b"db1");
        let r = HandshakeResponse::decode(&v).unwrap();
        assert_eq!(r.database.as_deref(), Some("db1"));
        // Truncated prefix is an error.
        assert!(HandshakeResponse::decode(&v[..20]).is_err());
    }

    #[test]
    fn decodes_response320() {
        let mut v = Vec::new();
        v.put_u16_le((cap::LONG_PASSWORD | cap::CONNECT_WITH_DB) as u16);
        v.put_uint_le(0xffffff, 3);
        v.extend_from_slice(b"old\0scrmbl\0db\0");
        let r = HandshakeResponse::decode(&v).unwrap();
        assert_eq!(r.user, "old");
        assert_eq!(r.auth_response, b"scrmbl");
        assert_eq!(r.database.as_deref(), Some("db"));
        assert_eq!(r.max_packet, 0xffffff);
    }

    #[test]
    fn auth_switch_request_adds_and_strips_the_nul() {
        let sw = AuthSwitchRequest {
            plugin: auth::NATIVE_PASSWORD.to_string(),
            data: b"abcdefghijklmnopqrst".to_vec(),
        };
        let mut v = Vec::new();
        sw.encode(&mut v);
        let mut expected = vec![0xfe];
        expected.extend_from_slice(b"mysql_native_password\0abcdefghijklmnopqrst\0");
        assert_eq!(v, expected);
        assert_eq!(AuthSwitchRequest::decode(&v).unwrap(), sw);
        // Without the trailing NUL the data is taken as is.
        assert_eq!(AuthSwitchRequest::decode(&v[..v.len() - 1]).unwrap(), sw);
        let old = AuthSwitchRequest::decode(&[0xfe]).unwrap();
        assert_eq!((old.plugin.as_str(), old.data.len()), ("", 0));
        assert!(AuthSwitchRequest::decode(&[0x00]).is_err());
        assert!(AuthSwitchRequest::decode(&[]).is_err());
    }

    #[test]
    fn greeting_errors() {
        let good = hex(MARIADB_GREETING);
        assert!(HandshakeV10::decode(&[]).is_err());
        assert!(HandshakeV10::decode(&[9]).is_err());
        // 49 bytes end after the lower capability flags: a (lenient) pre-4.1 greeting.
        // From then on, the greeting is complete only with the 12 bytes of nonce part 2.
        for n in (1..77).filter(|&n| n != 49) {
            assert!(
                HandshakeV10::decode(&good[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        assert!(HandshakeV10::decode(&good[..49]).is_ok());
        assert!(HandshakeV10::decode(&good[..77]).is_ok());
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_. é-]{0,24}"
    }

    fn nonempty_name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_. é-]{1,24}"
    }

    proptest! {
        #[test]
        fn greeting_round_trips(
            server_version in name(),
            connection_id in any::<u32>(),
            scramble in any::<[u8; 20]>(),
            capabilities in any::<u32>(),
            mariadb in any::<u32>(),
            charset in any::<u8>(),
            status in any::<u16>(),
            plugin in name(),
        ) {
            let plugin_auth = capabilities & cap::PLUGIN_AUTH != 0;
            let hs = HandshakeV10 {
                server_version,
                connection_id,
                scramble,
                capabilities,
                mariadb_capabilities: mariadb_capabilities(capabilities, mariadb),
                charset,
                status,
                auth_plugin: if plugin_auth { plugin } else { String::new() },
            };
            let mut v = Vec::new();
            hs.encode(&mut v);
            prop_assert_eq!(HandshakeV10::decode(&v).unwrap(), hs);
        }

        #[test]
        fn response_round_trips(
            caps in any::<u32>(),
            mariadb in any::<u32>(),
            max_packet in any::<u32>(),
            charset in any::<u8>(),
            user in name(),
            auth in proptest::collection::vec(any::<u8>(), 0..300),
            db in nonempty_name(),
            plugin in nonempty_name(),
            attrs in proptest::collection::vec((name(), name()), 0..5),
        ) {
            let caps = caps | cap::PROTOCOL_41;
            let mut auth = auth;
            if caps & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA == 0 {
                if caps & cap::SECURE_CONNECTION != 0 {
                    auth.truncate(255);
                } else {
                    auth.retain(|&b| b != 0);
                }
            }
            let resp = HandshakeResponse {
                capabilities: caps,
                mariadb_capabilities: mariadb_capabilities(caps, mariadb),
                max_packet,
                charset,
                user,
                auth_response: auth,
                database: (caps & cap::CONNECT_WITH_DB != 0).then_some(db),
                auth_plugin: (caps & cap::PLUGIN_AUTH != 0).then_some(plugin),
                attrs: if caps & cap::CONNECT_ATTRS != 0 { attrs } else { Vec::new() },
            };
            let mut v = Vec::new();
            resp.encode(&mut v);
            prop_assert_eq!(is_ssl_request(&v), false);
            prop_assert_eq!(HandshakeResponse::decode(&v).unwrap(), resp);
        }

        #[test]
        fn ssl_request_is_recognised(caps in any::<u32>(), max_packet in any::<u32>(), cs in any::<u8>()) {
            let mut v = Vec::new();
            put_ssl_request(&mut v, caps | cap::PROTOCOL_41, 0, max_packet, cs);
            prop_assert_eq!(is_ssl_request(&v), caps & cap::SSL != 0);
        }

        #[test]
        fn auth_switch_round_trips(plugin in name(), data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let sw = AuthSwitchRequest { plugin, data };
            let mut v = Vec::new();
            sw.encode(&mut v);
            prop_assert_eq!(AuthSwitchRequest::decode(&v).unwrap(), sw);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = HandshakeV10::decode(&data);
            let _ = HandshakeResponse::decode(&data);
            let _ = AuthSwitchRequest::decode(&data);
            let _ = is_ssl_request(&data);
        }

        #[test]
        fn mutated_real_packets_never_panic(
            which in 0usize..4,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut v = hex([MARIADB_GREETING, MARIADB_CLI_RESPONSE, MYSQL8_GREETING, MYSQL8_RESPONSE][which]);
            for (i, b) in flips {
                let n = v.len();
                v[i % n] = b;
            }
            v.truncate(cut % (v.len() + 1));
            let _ = HandshakeV10::decode(&v);
            let _ = HandshakeResponse::decode(&v);
            let _ = AuthSwitchRequest::decode(&v);
        }
    }
}
