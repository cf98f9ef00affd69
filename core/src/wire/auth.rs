//! Authentication scrambles: `mysql_native_password` and the fast path of
//! `caching_sha2_password`.
//!
//! Both plugins answer a 20-byte server nonce with a hash of the password that proves
//! knowledge of it without sending it. An empty password is answered with an empty response.
//! Verification compares in time independent of where the bytes differ.

use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`; empty password → empty response.
pub fn scramble_native(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    scramble_native_with_stage2(&stage1, &stage2, nonce)
}

fn scramble_native_with_stage2(stage1: &[u8], stage2: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(stage2);
    let mask = h.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// The double SHA1 of a password, as the server stores it (`mysql.user` keeps it as
/// `*` followed by 40 upper-case hex digits).
pub fn native_password_hash(password: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(&Sha1::digest(Sha1::digest(password)));
    out
}

/// Checks a `mysql_native_password` response against the clear-text password.
pub fn verify_native(password: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    constant_time_eq(&scramble_native(password, nonce), response)
}

/// Checks a `mysql_native_password` response against the stored double SHA1
/// ([`native_password_hash`]), so the gateway need not keep clear-text passwords.
/// `None` means the account has no password: only an empty response passes.
pub fn verify_native_hash(stage2: Option<&[u8; 20]>, nonce: &[u8], response: &[u8]) -> bool {
    let Some(stage2) = stage2 else {
        return response.is_empty();
    };
    if response.len() != 20 {
        return false;
    }
    // response = stage1 XOR SHA1(nonce + stage2), so stage1 = response XOR that mask, and the
    // client knew the password iff SHA1(stage1) == stage2.
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(stage2);
    constant_time_eq(&Sha1::digest(unmask::<20>(response, &h.finalize())), stage2)
}

/// Checks a caching_sha2_password fast-path response against a stored
/// `SHA256(SHA256(password))`.
pub fn verify_sha2_stage2(stage2: &[u8; 32], nonce: &[u8], response: &[u8]) -> bool {
    if response.len() != 32 {
        return false;
    }
    // response = SHA256(pw) XOR SHA256(stage2 + nonce): undo the mask, hash, compare.
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(nonce);
    constant_time_eq(
        &Sha256::digest(unmask::<32>(response, &h.finalize())),
        stage2,
    )
}

/// `response XOR mask`, both `N` bytes long (checked by the callers).
fn unmask<const N: usize>(response: &[u8], mask: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, (a, b)) in out.iter_mut().zip(response.iter().zip(mask)) {
        *o = a ^ b;
    }
    out
}

/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)`; empty password → empty
/// response.
pub fn scramble_sha2(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(nonce);
    let mask = h.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// Checks a `caching_sha2_password` fast-path response against the clear-text password.
pub fn verify_sha2(password: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    constant_time_eq(&scramble_sha2(password, nonce), response)
}

/// Equality whose running time depends only on the lengths (which are public).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    /// Captured from MariaDB 10.11: the nonce of its handshake and the `mariadb` CLI's
    /// response for the password `secret`.
    const MARIADB_NONCE: &[u8; 20] = b"Q`q6V10>$;:Pf/VF:/|D";
    const MARIADB_RESPONSE: &str = "98b8cdb319f47e9bd8d04fdfd551ba2f01e8c072";

    /// MySQL 8.0.32: nonce of the handshake and a client's caching_sha2_password response for
    /// the password `test` (from a published byte-level walkthrough of a real connection).
    const MYSQL8_NONCE: &str = "1c46194659764 04b 3f71347153455e5d227a323d";
    const MYSQL8_RESPONSE: &str =
        "382494b77530094f7aa0351eeea13eb2e5fe457f1bb4d9407254d3a993daeb55";

    #[test]
    fn native_matches_a_real_client() {
        assert_eq!(
            scramble_native(b"secret", MARIADB_NONCE),
            hex(MARIADB_RESPONSE)
        );
        assert!(verify_native(
            b"secret",
            MARIADB_NONCE,
            &hex(MARIADB_RESPONSE)
        ));
        assert!(!verify_native(
            b"Secret",
            MARIADB_NONCE,
            &hex(MARIADB_RESPONSE)
        ));
        let stage2 = native_password_hash(b"secret");
        assert!(verify_native_hash(
            Some(&stage2),
            MARIADB_NONCE,
            &hex(MARIADB_RESPONSE)
        ));
        assert!(!verify_native_hash(
            Some(&stage2),
            b"another nonce 123456",
            &hex(MARIADB_RESPONSE)
        ));
        assert!(!verify_native_hash(Some(&stage2), MARIADB_NONCE, &[]));
    }

    #[test]
    fn native_vectors_from_python_hashlib() {
        // python3: s1=sha1(pw); bytes(a^b for a,b in zip(s1, sha1(nonce+sha1(s1)))).hex()
        let nonce = b"abcdefghijklmnopqrst";
        assert_eq!(
            scramble_native(b"password", nonce),
            hex("bfdd49584b917d42c758edd2a7a541f721843041")
        );
        // SELECT PASSWORD('secret') = *14E65567ABDB5135D0CFD9A70B3032C179A49EE7
        assert_eq!(
            native_password_hash(b"secret").to_vec(),
            hex("14E65567ABDB5135D0CFD9A70B3032C179A49EE7")
        );
    }

    #[test]
    fn sha2_matches_a_real_client() {
        let nonce = hex(MYSQL8_NONCE);
        assert_eq!(scramble_sha2(b"test", &nonce), hex(MYSQL8_RESPONSE));
        assert!(verify_sha2(b"test", &nonce, &hex(MYSQL8_RESPONSE)));
        assert!(!verify_sha2(b"tesT", &nonce, &hex(MYSQL8_RESPONSE)));
    }

    #[test]
    fn sha2_vectors_from_python_hashlib() {
        // python3: a=sha256(pw); bytes(x^y for x,y in zip(a, sha256(sha256(a)+nonce))).hex()
        let nonce = b"abcdefghijklmnopqrst";
        assert_eq!(
            scramble_sha2(b"password", nonce),
            hex("6584c404bc44a3d014cacc4fc823edc02991a53d5ae825ea0f91c7a0f1f26653")
        );
    }

    #[test]
    fn empty_passwords() {
        assert!(scramble_native(b"", b"01234567890123456789").is_empty());
        assert!(scramble_sha2(b"", b"01234567890123456789").is_empty());
        assert!(verify_native(b"", b"01234567890123456789", b""));
        assert!(verify_sha2(b"", b"01234567890123456789", b""));
        assert!(!verify_native(b"x", b"01234567890123456789", b""));
        assert!(!verify_native(b"", b"01234567890123456789", b"x"));
        assert!(verify_native_hash(None, b"01234567890123456789", b""));
        assert!(!verify_native_hash(None, b"01234567890123456789", &[1; 20]));
    }
}
