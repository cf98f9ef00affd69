//! A session driven by a protocol client with no sockets: per-user keyspaces, and the
//! handshake and idle timeouts on the caller's clock. The statements checked here are refused
//! or answered before any shard is contacted, so no shard is needed.

use super::*;
use crate::backend::{BackendConfig, BackendConn, BackendEvent};
use crate::gateway::Topology;
use crate::server::ServerConfig;
use crate::users::parse_auth_file;
use crate::vschema::{parse_vschema, DEFAULT_VSCHEMA_JSON};

fn gateway() -> Arc<Gateway> {
    let users = parse_auth_file(
        r#"{
            "root": [{"Password": ""}],
            "lookup_only": [{"Password": "pw", "Keyspaces": ["lookup"]}],
            "nothing": [{"Password": "pw", "Keyspaces": []}]
        }"#,
    )
    .unwrap();
    let topo = Topology::embedded(
        &[("commerce", "-80"), ("commerce", "80-"), ("lookup", "0")],
        "commerce",
    );
    Gateway::with_vschema(
        ServerConfig {
            users,
            ..ServerConfig::default()
        },
        topo,
        parse_vschema(DEFAULT_VSCHEMA_JSON).unwrap(),
    )
    .unwrap()
}

struct Client {
    session: Session,
    client: BackendConn,
    events: Vec<String>,
    opened: usize,
}

impl Client {
    fn connect(gw: &Arc<Gateway>, user: &str, password: &str, db: Option<&str>) -> Client {
        let mut c = Client {
            session: Session::new(gw.clone(), 1, *b"0123456789abcdefghij"),
            client: BackendConn::new(BackendConfig {
                user: user.into(),
                password: password.into(),
                database: db.map(str::to_string),
                max_packet: 0,
                found_rows: false,
                tls: None,
            }),
            events: Vec::new(),
            opened: 0,
        };
        c.drive();
        c
    }

    fn drive(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(ev) = self.session.poll_event() {
                if let SessionEvent::OpenBackend { .. } = ev {
                    self.opened += 1;
                }
            }
            // The borrowed form the driver uses (the simulator uses `poll_client_transmit`).
            let b = self.session.client_transmit();
            if !b.is_empty() {
                self.client.handle_input(b);
                self.session.client_transmitted();
                moved = true;
            }
            assert!(self.session.client_transmit().is_empty());
            if self.session.is_closed() {
                self.client.handle_close();
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(match e {
                    BackendEvent::Connected { .. } => "connected".into(),
                    BackendEvent::Columns(c) => format!("cols{}", c.len()),
                    BackendEvent::Row(r) => format!("row:{}", String::from_utf8_lossy(&r)),
                    BackendEvent::Relayed { .. } => "relayed".into(),
                    BackendEvent::Done { .. } => "done".into(),
                    BackendEvent::Ok { .. } => "ok".into(),
                    BackendEvent::Prepared { .. } => "prepared".into(),
                    BackendEvent::Error(e) => format!("err{} {}", e.code, e.message),
                    BackendEvent::Closed(e) => format!("closed{} {}", e.code, e.message),
                });
            }
            if let Some(b) = self.client.poll_transmit() {
                self.session.handle_client_input(&b);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("did not settle");
    }

    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    fn query(&mut self, sql: &str) -> Vec<String> {
        self.client.query(sql).unwrap();
        self.drive();
        self.take()
    }
}

const DENIED_COMMERCE: &str =
    "err1044 Access denied for user 'lookup_only'@'%' to database 'commerce'";

#[test]
fn a_denied_keyspace_is_1044_and_the_connection_stays_usable() {
    let gw = gateway();
    let mut c = Client::connect(&gw, "lookup_only", "pw", None);
    assert_eq!(c.take(), ["connected"]);
    // Starts in its own keyspace, since the default one is not allowed.
    assert_eq!(
        c.query("select database()"),
        ["cols1", "row:\x06lookup", "done"]
    );
    // (An unqualified table resolves in the unsharded session keyspace, as in Vitess.)
    assert_eq!(c.query("select * from commerce.corder"), [DENIED_COMMERCE]);
    assert_eq!(
        c.query("insert into commerce.customer (customer_id, email) values (1, 'a')"),
        [DENIED_COMMERCE]
    );
    assert_eq!(
        c.query("select c.email from commerce.customer c join commerce.corder o on c.customer_id = o.customer_id where c.customer_id = 5"),
        [DENIED_COMMERCE]
    );
    assert_eq!(c.query("use commerce"), [DENIED_COMMERCE]);
    c.client.init_db("commerce").unwrap();
    c.drive();
    assert_eq!(c.take(), [DENIED_COMMERCE]);
    assert_eq!(c.opened, 0, "no shard was contacted for a denied statement");
    // Still usable: allowed statements go through.
    assert_eq!(c.query("use lookup"), ["ok"]);
    assert_eq!(
        c.query("show databases"),
        ["cols1", "row:\x06lookup", "done"]
    );
    assert_eq!(
        c.query("select @@version_comment"),
        [
            "cols1",
            "row:\x23shardgate: a sharding MySQL gateway",
            "done"
        ]
    );
    assert!(!c.session.is_closed());
}

#[test]
fn a_denied_handshake_database_refuses_the_connection() {
    let gw = gateway();
    let mut c = Client::connect(&gw, "lookup_only", "pw", Some("commerce"));
    assert_eq!(c.take(), [DENIED_COMMERCE.replacen("err", "closed", 1)]);
    assert!(c.session.is_closed());
    let mut c = Client::connect(&gw, "lookup_only", "pw", Some("lookup"));
    assert_eq!(c.take(), ["connected"]);
}

#[test]
fn unrestricted_users_see_everything_and_an_empty_list_allows_nothing() {
    let gw = gateway();
    let mut c = Client::connect(&gw, "root", "", Some("commerce"));
    assert_eq!(c.take(), ["connected"]);
    assert_eq!(
        c.query("show databases"),
        ["cols1", "row:\x08commerce", "row:\x06lookup", "done"]
    );
    assert_eq!(c.query("use lookup"), ["ok"]);
    let mut c = Client::connect(&gw, "nothing", "pw", None);
    assert_eq!(c.take(), ["connected"]);
    assert_eq!(c.query("show databases"), ["cols1", "done"]);
    assert_eq!(
        c.query("use lookup"),
        ["err1044 Access denied for user 'nothing'@'%' to database 'lookup'"]
    );
}

fn gateway_with_timeouts(handshake_ms: u64, idle_ms: u64) -> Arc<Gateway> {
    let limits = crate::gateway::Limits {
        handshake_timeout_ms: handshake_ms,
        idle_timeout_ms: idle_ms,
        ..Default::default()
    };
    gateway().with_limits(limits)
}

#[test]
fn a_client_that_does_not_authenticate_in_time_is_closed() {
    let gw = gateway_with_timeouts(2_000, 0);
    let mut s = Session::new(gw, 1, *b"0123456789abcdefghij");
    s.set_now(5_000_000);
    assert!(
        s.poll_client_transmit().is_some(),
        "the greeting goes out at once"
    );
    assert_eq!(s.poll_timeout(), Some(7_000_000));
    // Early wake-ups change nothing.
    s.handle_timeout(6_999_999);
    assert!(!s.is_closed());
    s.handle_timeout(7_000_000);
    assert!(s.is_closed(), "closed at the handshake deadline");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn an_idle_client_is_closed_after_the_idle_limit_and_each_statement_restarts_it() {
    let gw = gateway_with_timeouts(0, 3_000);
    let mut c = Client::connect(&gw, "root", "", None);
    assert_eq!(c.take(), ["connected"]);
    let t0 = 1_000_000;
    c.session.set_now(t0);
    assert_eq!(
        c.query("select database()"),
        ["cols1", "row:\x08commerce", "done"]
    );
    assert_eq!(c.session.poll_timeout(), Some(t0 + 3_000_000));
    // A statement a second later moves the deadline.
    c.session.set_now(t0 + 1_000_000);
    assert_eq!(
        c.query("select database()"),
        ["cols1", "row:\x08commerce", "done"]
    );
    let due = t0 + 4_000_000;
    assert_eq!(c.session.poll_timeout(), Some(due));
    c.session.handle_timeout(due - 1);
    assert!(!c.session.is_closed());
    c.session.handle_timeout(due);
    c.drive();
    assert!(
        c.session.is_closed(),
        "closed once idle for the whole limit"
    );
    assert!(
        c.take().iter().any(|e| e.starts_with("closed")),
        "the client sees the close"
    );
}
