//! Accounts the gateway authenticates clients against, and the static auth file they come
//! from (`--auth-file`).
//!
//! # The auth file
//! Vitess's static-auth JSON shape (vtgate's `mysql_auth_server_static_file`): an object from
//! user name to a list of entries, any one of which may match:
//!
//! ```json
//! {
//!   "app":    [{"Password": "s3cret", "UserData": "app"}],
//!   "report": [{"MysqlNativePassword": "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7",
//!               "Keyspaces": ["commerce"]}],
//!   "old":    {"Password": "legacy single-entry form"}
//! }
//! ```
//!
//! - `Password`: the clear-text password (`""` or absent: no password).
//! - `MysqlNativePassword`: `*` + 40 hex digits, the double SHA1 MySQL stores (`SELECT
//!   PASSWORD('…')`). With both fields, they must describe the same password.
//! - `UserData`, `Groups`: accepted and kept for logs; they grant nothing.
//! - `SourceHost`: Vitess uses `"localhost"` to restrict an entry to its unix socket; shardgate
//!   serves TCP only, so an entry with a `SourceHost` never matches.
//! - `Keyspaces` (a shardgate extension): the keyspaces this entry may use. Absent: all of
//!   them; a list: only those (a statement, `USE`, COM_INIT_DB or handshake database naming any
//!   other gets ERR 1044). An empty list allows no keyspace at all.
//!
//! Unknown fields are rejected, so a typo cannot silently drop a restriction.
//!
//! # Which password check runs
//! - `mysql_native_password` clients are checked against either form.
//! - `caching_sha2_password` clients take the fast path when the gateway can check their
//!   scramble: against a clear-text `Password`, or against a hash cached from an earlier full
//!   authentication of the same entry (this process only). Otherwise (a hash-only entry not
//!   yet cached, or a scramble that matches no entry while some entry is hash-only) the
//!   gateway asks for *full authentication*: over TLS the client sends its password in clear
//!   text, which is checked against the hash and then cached. Without TLS that would need the
//!   RSA key exchange, which shardgate does not implement: the client is instead switched to
//!   `mysql_native_password` with the same nonce, which the stored hash can check.

use crate::wire::auth;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How an account's password is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// The clear text (possibly empty: no password).
    Plain(String),
    /// The double SHA1 of `mysql_native_password` only.
    NativeHash([u8; 20]),
}

/// One entry of a user (a user may have several, e.g. while a password is rotated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub secret: Secret,
    pub user_data: String,
    /// Keyspaces this entry may use; `None`: all.
    pub keyspaces: Option<Vec<String>>,
    /// Entries restricted to a source host never match (TCP only, see the module docs).
    pub source_host: Option<String>,
}

impl Account {
    /// An account with a clear-text password and access to every keyspace.
    pub fn with_password(password: &str) -> Account {
        Account {
            secret: Secret::Plain(password.to_string()),
            user_data: String::new(),
            keyspaces: None,
            source_host: None,
        }
    }

    /// May this entry be matched by a TCP client?
    pub fn usable(&self) -> bool {
        self.source_host.as_deref().is_none_or(str::is_empty)
    }

    /// May this entry use keyspace `ks`?
    pub fn allows_keyspace(&self, ks: &str) -> bool {
        self.keyspaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|k| k == ks))
    }

    /// Does this entry have no password at all?
    pub fn is_passwordless(&self) -> bool {
        matches!(&self.secret, Secret::Plain(p) if p.is_empty())
    }

    /// Checks a `mysql_native_password` response to `nonce`.
    pub fn verify_native(&self, nonce: &[u8], response: &[u8]) -> bool {
        match &self.secret {
            Secret::Plain(p) => auth::verify_native(p.as_bytes(), nonce, response),
            Secret::NativeHash(h) => auth::verify_native_hash(Some(h), nonce, response),
        }
    }

    /// Checks a clear-text password (caching_sha2_password full authentication).
    pub fn verify_clear(&self, password: &[u8]) -> bool {
        match &self.secret {
            Secret::Plain(p) => auth::constant_time_eq(p.as_bytes(), password),
            Secret::NativeHash(h) => {
                !password.is_empty()
                    && auth::constant_time_eq(&auth::native_password_hash(password), h)
            }
        }
    }
}

/// `SHA256(SHA256(password))`: what the caching_sha2_password fast path is checked against.
pub fn sha2_stage2(password: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(Sha256::digest(password)));
    out
}

/// What a caching_sha2_password fast-path response leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sha2Fast {
    /// Entry `n` of the user matched.
    Match(usize),
    /// No entry could check the scramble: ask for the password (full authentication).
    NeedFull,
    /// Wrong password (every entry could check it, none matched), or unknown user.
    Denied,
}

/// SHA256(SHA256(password)) by (user, entry index), learnt from full authentications.
type Sha2Cache = Arc<Mutex<BTreeMap<(String, usize), [u8; 32]>>>;

/// The accounts, by user name, plus the caching_sha2_password cache of full authentications.
#[derive(Clone, Debug, Default)]
pub struct Users {
    accounts: BTreeMap<String, Vec<Account>>,
    /// (user, entry index) -> SHA256(SHA256(password)), filled by full authentications of
    /// hash-only entries. Shared by every connection of the server.
    sha2_cache: Sha2Cache,
}

impl Users {
    /// No accounts at all.
    pub fn empty() -> Users {
        Users::default()
    }

    /// The default without an auth file: `root` with no password.
    pub fn default_root() -> Users {
        let mut u = Users::empty();
        u.set_password("root", "");
        u
    }

    /// Replaces `user`'s entries with one clear-text password allowing every keyspace.
    pub fn set_password(&mut self, user: &str, password: &str) {
        self.accounts
            .insert(user.to_string(), vec![Account::with_password(password)]);
    }

    /// Adds one entry to `user`.
    pub fn add(&mut self, user: &str, account: Account) {
        self.accounts
            .entry(user.to_string())
            .or_default()
            .push(account);
    }

    /// The usable entries of `user` (with their indexes), empty for an unknown user.
    pub fn entries(&self, user: &str) -> Vec<(usize, &Account)> {
        self.accounts
            .get(user)
            .map(|v| v.iter().enumerate().filter(|(_, a)| a.usable()).collect())
            .unwrap_or_default()
    }

    pub fn contains(&self, user: &str) -> bool {
        !self.entries(user).is_empty()
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// Entry `index` of `user`.
    pub fn account(&self, user: &str, index: usize) -> Option<&Account> {
        self.accounts.get(user).and_then(|v| v.get(index))
    }

    /// The first entry of `user` accepting a `mysql_native_password` response.
    pub fn check_native(&self, user: &str, nonce: &[u8], response: &[u8]) -> Option<usize> {
        self.entries(user)
            .into_iter()
            .find(|(_, a)| a.verify_native(nonce, response))
            .map(|(i, _)| i)
    }

    /// The caching_sha2_password fast path.
    pub fn check_sha2_fast(&self, user: &str, nonce: &[u8], response: &[u8]) -> Sha2Fast {
        let entries = self.entries(user);
        if entries.is_empty() {
            return Sha2Fast::Denied;
        }
        let cache = self
            .sha2_cache
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let mut uncheckable = false;
        for (i, a) in &entries {
            let ok = match &a.secret {
                Secret::Plain(p) => auth::verify_sha2(p.as_bytes(), nonce, response),
                Secret::NativeHash(_) => {
                    // Hash-only entries are never the empty password: an empty response
                    // cannot be theirs, and a non-empty one can only be checked from the cache.
                    if response.is_empty() {
                        false
                    } else {
                        // A cached hash that does not match may be stale: MySQL then also
                        // falls back to full authentication.
                        uncheckable = true;
                        cache
                            .get(&(user.to_string(), *i))
                            .is_some_and(|s| auth::verify_sha2_stage2(s, nonce, response))
                    }
                }
            };
            if ok {
                return Sha2Fast::Match(*i);
            }
        }
        if uncheckable {
            Sha2Fast::NeedFull
        } else {
            Sha2Fast::Denied
        }
    }

    /// caching_sha2_password full authentication with the clear-text password; caches the
    /// fast-path hash of the entry that matched.
    pub fn check_clear(&self, user: &str, password: &[u8]) -> Option<usize> {
        let (i, _) = self
            .entries(user)
            .into_iter()
            .find(|(_, a)| a.verify_clear(password))?;
        if let Ok(mut c) = self.sha2_cache.lock() {
            c.insert((user.to_string(), i), sha2_stage2(password));
        }
        Some(i)
    }

    /// Is a fast-path hash cached for entry `index` of `user`?
    pub fn is_cached(&self, user: &str, index: usize) -> bool {
        self.sha2_cache
            .lock()
            .is_ok_and(|c| c.contains_key(&(user.to_string(), index)))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    #[serde(rename = "Password", default)]
    password: Option<String>,
    #[serde(rename = "MysqlNativePassword", default)]
    mysql_native_password: Option<String>,
    #[serde(rename = "UserData", default)]
    user_data: Option<String>,
    #[serde(rename = "SourceHost", default)]
    source_host: Option<String>,
    #[serde(rename = "Groups", default)]
    #[allow(dead_code)]
    groups: Option<Vec<String>>,
    #[serde(rename = "Keyspaces", default)]
    keyspaces: Option<Vec<String>>,
}

/// Parses `*` + 40 hex digits (either case).
pub fn parse_native_hash(s: &str) -> Result<[u8; 20], String> {
    let hex = s
        .strip_prefix('*')
        .ok_or_else(|| format!("MysqlNativePassword must start with '*': {s:?}"))?;
    if hex.len() != 40 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "MysqlNativePassword must be '*' and 40 hex digits: {s:?}"
        ));
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Parses a static auth file (see the module docs).
///
/// # Errors
/// A message naming the user and entry at fault.
pub fn parse_auth_file(json: &str) -> Result<Users, String> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("auth file: {e}"))?;
    let mut users = Users::empty();
    for (name, u) in raw {
        // A list of entries, or (older files) one entry.
        let entries: Vec<FileEntry> = match u {
            serde_json::Value::Array(_) => serde_json::from_value(u),
            one => serde_json::from_value(one).map(|e| vec![e]),
        }
        .map_err(|e| format!("auth file: user {name:?}: {e}"))?;
        if entries.is_empty() {
            return Err(format!("auth file: user {name:?} has no entry"));
        }
        for (i, e) in entries.into_iter().enumerate() {
            let at = || format!("auth file: user {name:?} entry {i}");
            let hash = e
                .mysql_native_password
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(parse_native_hash)
                .transpose()
                .map_err(|m| format!("{}: {m}", at()))?;
            let secret = match (e.password, hash) {
                (Some(p), Some(h)) => {
                    if p.is_empty() || auth::native_password_hash(p.as_bytes()) != h {
                        return Err(format!(
                            "{}: Password and MysqlNativePassword describe different passwords",
                            at()
                        ));
                    }
                    Secret::Plain(p)
                }
                (Some(p), None) => Secret::Plain(p),
                (None, Some(h)) => Secret::NativeHash(h),
                (None, None) => Secret::Plain(String::new()),
            };
            users.add(
                &name,
                Account {
                    secret,
                    user_data: e.user_data.unwrap_or_default(),
                    keyspaces: e.keyspaces,
                    source_host: e.source_host,
                },
            );
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
        "app": [{"Password": "secret", "UserData": "app"}],
        "hashed": [{"MysqlNativePassword": "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", "UserData": "h", "Keyspaces": ["commerce"]}],
        "both": [{"Password": "secret", "MysqlNativePassword": "*14e65567abdb5135d0cfd9a70b3032c179a49ee7"}],
        "rotating": [{"Password": "old"}, {"Password": "new", "Keyspaces": []}],
        "local": [{"Password": "x", "SourceHost": "localhost"}],
        "legacy": {"Password": "p", "Groups": ["g"]},
        "nopass": [{"UserData": "n"}]
    }"#;

    const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

    #[test]
    fn parses_the_vitess_shape() {
        let u = parse_auth_file(FILE).unwrap();
        assert_eq!(u.len(), 7);
        assert_eq!(u.entries("app")[0].1.secret, Secret::Plain("secret".into()));
        assert_eq!(u.entries("app")[0].1.user_data, "app");
        let h = u.entries("hashed")[0].1.clone();
        assert_eq!(
            h.secret,
            Secret::NativeHash(auth::native_password_hash(b"secret"))
        );
        assert!(h.allows_keyspace("commerce"));
        assert!(!h.allows_keyspace("lookup"));
        assert!(u.entries("app")[0].1.allows_keyspace("anything"));
        assert_eq!(u.entries("rotating").len(), 2);
        assert!(!u.entries("rotating")[1].1.allows_keyspace("commerce"));
        assert!(
            u.entries("local").is_empty(),
            "SourceHost entries never match"
        );
        assert!(!u.contains("local"));
        assert_eq!(u.entries("legacy")[0].1.secret, Secret::Plain("p".into()));
        assert!(u.entries("nopass")[0].1.is_passwordless());
        assert!(!u.contains("nobody"));
    }

    #[test]
    fn rejects_bad_files() {
        for (bad, why) in [
            ("[]", "auth file"),
            (r#"{"a": [{"Pasword": "x"}]}"#, "unknown field"),
            (
                r#"{"a": [{"MysqlNativePassword": "14E6"}]}"#,
                "start with '*'",
            ),
            (
                r#"{"a": [{"MysqlNativePassword": "*14E6"}]}"#,
                "40 hex digits",
            ),
            (
                r#"{"a": [{"Password": "other", "MysqlNativePassword": "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"}]}"#,
                "different passwords",
            ),
            (r#"{"a": []}"#, "no entry"),
            (r#"{"a": [{"Keyspaces": "commerce"}]}"#, "auth file"),
        ] {
            let e = parse_auth_file(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn native_checks_both_forms_and_every_entry() {
        let u = parse_auth_file(FILE).unwrap();
        let r = auth::scramble_native(b"secret", NONCE);
        assert_eq!(u.check_native("app", NONCE, &r), Some(0));
        assert_eq!(u.check_native("hashed", NONCE, &r), Some(0));
        assert_eq!(u.check_native("both", NONCE, &r), Some(0));
        assert_eq!(u.check_native("legacy", NONCE, &r), None);
        let new = auth::scramble_native(b"new", NONCE);
        assert_eq!(u.check_native("rotating", NONCE, &new), Some(1));
        assert_eq!(u.check_native("nopass", NONCE, &[]), Some(0));
        assert_eq!(u.check_native("hashed", NONCE, &[]), None);
        let x = auth::scramble_native(b"x", NONCE);
        assert_eq!(u.check_native("local", NONCE, &x), None);
    }

    #[test]
    fn sha2_fast_path_full_auth_and_cache() {
        let u = parse_auth_file(FILE).unwrap();
        let good = auth::scramble_sha2(b"secret", NONCE);
        let bad = auth::scramble_sha2(b"wrong", NONCE);
        assert_eq!(u.check_sha2_fast("app", NONCE, &good), Sha2Fast::Match(0));
        assert_eq!(u.check_sha2_fast("app", NONCE, &bad), Sha2Fast::Denied);
        assert_eq!(u.check_sha2_fast("nobody", NONCE, &good), Sha2Fast::Denied);
        // A hash-only entry cannot check the scramble until a full authentication.
        assert_eq!(
            u.check_sha2_fast("hashed", NONCE, &good),
            Sha2Fast::NeedFull
        );
        assert_eq!(u.check_sha2_fast("hashed", NONCE, &[]), Sha2Fast::Denied);
        assert_eq!(u.check_clear("hashed", b"wrong"), None);
        assert!(!u.is_cached("hashed", 0));
        assert_eq!(u.check_clear("hashed", b"secret"), Some(0));
        assert!(u.is_cached("hashed", 0));
        // Now the fast path works, for a fresh nonce too; a wrong password asks again.
        assert_eq!(
            u.check_sha2_fast("hashed", NONCE, &good),
            Sha2Fast::Match(0)
        );
        let nonce2 = b"ABCDEFGHIJKLMNOPQRST";
        let good2 = auth::scramble_sha2(b"secret", nonce2);
        assert_eq!(
            u.check_sha2_fast("hashed", nonce2, &good2),
            Sha2Fast::Match(0)
        );
        assert_eq!(u.check_sha2_fast("hashed", NONCE, &bad), Sha2Fast::NeedFull);
        // Clones share the cache (the config is cloned per gateway build).
        let c = u.clone();
        assert!(c.is_cached("hashed", 0));
        assert_eq!(u.check_clear("app", b"secret"), Some(0));
        assert_eq!(u.check_clear("nopass", b""), Some(0));
        assert_eq!(u.check_clear("hashed", b""), None);
    }

    #[test]
    fn stage2_check_matches_the_clear_text_check() {
        let s = sha2_stage2(b"password");
        let r = auth::scramble_sha2(b"password", NONCE);
        assert!(auth::verify_sha2_stage2(&s, NONCE, &r));
        assert!(!auth::verify_sha2_stage2(&s, b"other nonce 01234567", &r));
        assert!(!auth::verify_sha2_stage2(&s, NONCE, &r[..31]));
    }
}
