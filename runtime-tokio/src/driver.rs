//! The network driver: accepts clients and runs each [`Session`] on its own task, moving bytes
//! between the session and its sockets. All protocol logic lives in the core; this file only
//! owns sockets and the clock.
//!
//! One task per client connection reads the client socket *and* its backend sockets itself
//! (no helper tasks, no channels): one wake-up per arriving segment, writes issued directly.
//! While a write to the client is pending, backend sockets are not read — that is the
//! backpressure that keeps memory per session bounded.
//!
//! TLS: the client stream starts plain; when the session reports that the client asked for
//! TLS ([`SessionEvent::StartTls`]) the task runs the rustls handshake on it (bounded by the
//! handshake timeout) and carries on over a [`ClientStream::Tls`].

use crate::clock::Clock;
use crate::embedded::EmbeddedShards;
use crate::net::Net;
use crate::pool::{Acquired, Idle, Lease, Pools};
use crate::tls::{ClientStream, Prefixed};
use crate::wakeups::{backend_bit, Wakeups, CLIENT};
use crate::workers::{self, Workers};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardgate_core::gateway::{Gateway, ShardAddress};
use shardgate_core::session::{BackendId, Session, SessionEvent, Slots, TlsInfo};
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::time::Sleep;

/// Bytes read from a socket at a time, per session.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Inputs a session takes in a row before it lets the other sessions of its thread run.
/// Reads of a bare socket skip tokio's cooperative budget ([`Net::poll_recv`]), so this is
/// what keeps a socket that never runs dry (a long result) from starving its neighbours.
const INPUTS_PER_TURN: u32 = 64;

/// What other tasks ask of a session, as bits of [`Mailbox::requests`].
const KILL_QUERY: u8 = 1;
const KILL_CONNECTION: u8 = 2;
/// Shutdown began: close once the statement in progress is done.
const DRAIN: u8 = 4;

/// A session's mailbox for requests from other tasks (KILL, shutdown). The session checks it on
/// every wake-up, so it is one atomic load there (a channel cost two queue pops and a waker
/// registration); requests that arrive together are handled together, in a fixed order.
#[derive(Default)]
struct Mailbox {
    requests: AtomicU8,
    /// The session task's waker, kept (woken by reference) so that it is stored once per task.
    waker: Mutex<Option<Waker>>,
}

impl Mailbox {
    fn post(&self, request: u8) {
        self.requests.fetch_or(request, Ordering::AcqRel);
        if let Ok(w) = self.waker.lock() {
            if let Some(w) = w.as_ref() {
                w.wake_by_ref();
            }
        }
    }

    /// Takes the pending requests, if any, else makes sure a post wakes `cx`'s task;
    /// `stored`: the waker last stored, owned by the session (no lock when it is the same).
    fn poll_take(&self, cx: &Context<'_>, stored: &mut Option<Waker>) -> Option<u8> {
        if self.requests.load(Ordering::Acquire) != 0 {
            return Some(self.requests.swap(0, Ordering::AcqRel));
        }
        if stored.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return None;
        }
        *stored = Some(cx.waker().clone());
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(cx.waker().clone());
        }
        // A post between the load above and the store used the previous waker.
        match self.requests.swap(0, Ordering::AcqRel) {
            0 => None,
            r => Some(r),
        }
    }
}

/// Everything a client task needs.
pub struct Driver<N: Net> {
    pub net: N,
    pub gateway: Arc<Gateway>,
    pub embedded: Arc<EmbeddedShards>,
    pub clock: Clock,
    rng: Mutex<ChaCha8Rng>,
    /// Each live client task's mailbox, by connection id.
    controls: Mutex<BTreeMap<u32, Arc<Mailbox>>>,
    /// Set on SIGTERM/SIGINT: stop accepting; sessions close once their statement is done.
    draining: tokio::sync::watch::Sender<bool>,
    /// Backend connection pools, one per tablet.
    pools: Pools<BackendStream<N::Stream>>,
    /// The TLS acceptor, when a certificate is configured ([`Driver::set_tls`]).
    tls: OnceLock<tokio_rustls::TlsAcceptor>,
    /// TLS toward `?ssl=true` shards, made on first use.
    /// TLS connectors toward shards, by the CA file that verifies them (`None`: unverified),
    /// built on first use.
    shard_tls: Mutex<BTreeMap<Option<String>, tokio_rustls::TlsConnector>>,
    /// Per-core runtimes that run the sessions ([`Driver::set_workers`]); without them each
    /// session is a task of the runtime that accepted it.
    workers: OnceLock<Workers>,
}

/// A session's backend socket, and the pool capacity it holds (none for side connections).
struct Backend<S: Send + 'static> {
    stream: BackendStream<S>,
    lease: Option<Lease<BackendStream<S>>>,
    /// The waker its reads register ([`Wakeups`]); made at its first poll.
    waker: Option<Waker>,
}

impl<N: Net> Driver<N> {
    /// `seed` feeds the PRNG that draws handshake nonces (seeded: the simulator replays them).
    pub fn new(
        net: N,
        gateway: Arc<Gateway>,
        embedded: Arc<EmbeddedShards>,
        seed: u64,
    ) -> Arc<Self> {
        Arc::new(Driver {
            net,
            embedded,
            clock: Clock::new(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            controls: Mutex::new(BTreeMap::new()),
            draining: tokio::sync::watch::channel(false).0,
            tls: OnceLock::new(),
            shard_tls: Mutex::new(BTreeMap::new()),
            workers: OnceLock::new(),
            pools: Pools::new(&gateway),
            gateway,
        })
    }

    /// Enables TLS toward clients (set once, before serving; the gateway's server config must
    /// offer it too, see `ServerConfig::tls`).
    pub fn set_tls(&self, acceptor: tokio_rustls::TlsAcceptor) {
        let _ = self.tls.set(acceptor);
    }

    /// Runs sessions on these per-core runtimes (set once, before serving).
    pub fn set_workers(&self, workers: Workers) {
        let _ = self.workers.set(workers);
    }

    /// Graceful shutdown: no new clients; each session closes when its statement in
    /// progress has finished (closing the backends rolls open transactions back).
    pub fn begin_shutdown(&self) {
        let _ = self.draining.send(true);
        // Sessions learn it through their mailbox (one less future per wait).
        if let Ok(c) = self.controls.lock() {
            for mailbox in c.values() {
                mailbox.post(DRAIN);
            }
        }
    }

    /// Client sessions still running.
    pub fn live_sessions(&self) -> usize {
        self.controls.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn scramble(&self) -> [u8; 20] {
        let mut s = [0u8; 20];
        if let Ok(mut rng) = self.rng.lock() {
            for b in s.iter_mut() {
                // Printable, no NUL: some clients treat the nonce as a C string.
                *b = rng.random_range(0x21u8..0x7f);
            }
        }
        s
    }

    /// Accepts clients forever, one task each.
    pub async fn serve(self: Arc<Self>, mut listener: N::Listener) -> io::Result<()> {
        tokio::spawn(expire_idle_backends(Arc::downgrade(&self)));
        let mut drain = self.draining.subscribe();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = drain.changed() => {
                    tracing::info!("no longer accepting clients (shutting down)");
                    return Ok(());
                }
                a = N::accept(&mut listener) => a,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let live = self.controls.lock().map(|c| c.len()).unwrap_or(0);
            if live >= self.gateway.limits.max_connections {
                tracing::warn!(%peer, live, "refusing a client: too many connections");
                let err = shardgate_core::SqlError::new(1040, "08004", "Too many connections");
                let mut stream = stream;
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(&shardgate_core::server::refusal_packet(&err))
                        .await;
                    let _ = stream.shutdown().await;
                });
                continue;
            }
            let id = self.gateway.next_connection_id();
            tracing::debug!(conn = id, %peer, "client connected");
            let me = self.clone();
            let host = peer
                .parse::<std::net::SocketAddr>()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| {
                    peer.rsplit_once(':')
                        .map_or(peer.clone(), |(h, _)| h.to_string())
                });
            match self.workers.get() {
                None => drop(tokio::spawn(me.run_client(stream, id, host))),
                Some(w) => drop(w.next().spawn(async move {
                    match N::rehome(stream) {
                        Ok(stream) => me.run_client(stream, id, host).await,
                        Err(e) => tracing::warn!(conn = id, error = %e, "cannot hand a client to a worker"),
                    }
                })),
            }
        }
    }

    /// Drives one client session until it closes.
    /// `host`: the client's address, for access-denied messages.
    pub async fn run_client(self: Arc<Self>, client: N::Stream, id: u32, host: String) {
        let mut client = ClientStream::Plain(client);
        let mut session = Session::new(self.gateway.clone(), id, self.scramble());
        session.set_peer_host(&host);
        session.set_now(self.clock.now_us());
        let mut backends: Slots<Backend<N::Stream>> = Slots::new();
        // Read buffer: big enough for a burst of rows per wake-up, small enough that 10,000
        // idle connections stay cheap.
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mailbox = Arc::new(Mailbox::default());
        let mut stored_waker = None;
        let mut wakeups = Wakeups::default();
        let mut client_waker: Option<Waker> = None;
        let mut streak = 0;
        if let Ok(mut c) = self.controls.lock() {
            c.insert(id, mailbox.clone());
        }
        // After the insert: a shutdown that began earlier posted no DRAIN to this mailbox.
        let mut draining = *self.draining.borrow();
        // One timer for the session's deadlines, re-armed only when a deadline comes
        // earlier than the armed one (a later one lets it fire early, harmlessly): no timer
        // registration per statement on the hot path.
        let timer = self.clock.sleep_at_us(u64::MAX / 4);
        tokio::pin!(timer);
        let mut armed: Option<u64> = None;
        // Whether the armed timer has been polled (holds our waker) since it was last reset.
        let mut timer_polled = false;
        loop {
            match self.flush(&mut session, &mut client, &mut backends).await {
                // Streams may have been replaced or polled with other wakers.
                Ok(true) => wakeups.mark(u64::MAX),
                Ok(false) => {}
                Err(_) => session.handle_client_close(),
            }
            if session.is_closed() {
                let _ = client.shutdown().await;
                break;
            }
            if draining && !session.is_busy() {
                tracing::debug!(conn = id, "closing an idle session for shutdown");
                session.handle_client_close();
                let _ = self.flush(&mut session, &mut client, &mut backends).await;
                let _ = client.shutdown().await;
                break;
            }
            if let Some(due) = session.poll_timeout() {
                if armed.is_none_or(|a| due < a) {
                    timer.as_mut().reset(self.clock.instant_at_us(due));
                    armed = Some(due);
                    timer_polled = false;
                }
            }
            let sources = Sources {
                mailbox: &mailbox,
                stored_waker: &mut stored_waker,
                wakeups: &mut wakeups,
                client_waker: &mut client_waker,
                session: &session,
                timer: armed.map(|_| (timer.as_mut(), &mut timer_polled)),
                streak: &mut streak,
            };
            let input = read_any::<N>(sources, &mut client, &mut backends, &mut buf).await;
            session.set_now(self.clock.now_us());
            match input {
                Input::Timeout => {
                    armed = None;
                    session.handle_timeout(self.clock.now_us());
                }
                Input::Control(requests) => {
                    draining |= requests & DRAIN != 0;
                    if requests & KILL_QUERY != 0 {
                        session.handle_kill(true);
                    }
                    if requests & KILL_CONNECTION != 0 {
                        session.handle_kill(false);
                    }
                }
                Input::Client(Ok(0)) | Input::Client(Err(_)) => session.handle_client_close(),
                Input::Client(Ok(n)) => session.handle_client_input(&buf[..n]),
                Input::Backend(b, Ok(0)) | Input::Backend(b, Err(_)) => {
                    backends.remove(&b);
                    session.handle_backend_close(b);
                }
                Input::Backend(b, Ok(n)) => session.handle_backend_input(b, &buf[..n]),
            }
        }
        if let Ok(mut c) = self.controls.lock() {
            c.remove(&id);
        }
        tracing::debug!(conn = id, "client session ended");
    }

    /// Carries out the session's events and writes its pending bytes. Draining the session
    /// changes nothing in it, so another pass is due only after the driver told it something
    /// (an event's outcome, a failed write): one pass per call on the hot path. Returns whether
    /// streams may have been opened, replaced or read with the task's own waker (an event was
    /// carried out, or rustls wrote), so that every source is polled next.
    async fn flush(
        &self,
        session: &mut Session,
        client: &mut ClientStream<N::Stream>,
        backends: &mut Slots<Backend<N::Stream>>,
    ) -> io::Result<bool> {
        let mut touched = false;
        loop {
            let mut told = false;
            while let Some(ev) = session.poll_event() {
                told = true;
                touched = true;
                match ev {
                    SessionEvent::OpenBackend {
                        id,
                        address,
                        pooled,
                        settings,
                    } => {
                        let settings = settings.as_ref();
                        self.open_backend(session, backends, id, &address, pooled, settings)
                            .await
                    }
                    SessionEvent::ReleaseBackend { id } => {
                        let backend = backends.remove(&id);
                        if let (Some(b), Some(conn)) = (backend, session.take_released(id)) {
                            if let Some(lease) = b.lease {
                                let idle = Idle {
                                    stream: b.stream,
                                    conn,
                                    home: workers::current(),
                                };
                                lease.release(idle, self.clock.now_us());
                            }
                        }
                    }
                    SessionEvent::CloseBackend { id } => {
                        if let Some(mut b) = backends.remove(&id) {
                            let _ = b.stream.shutdown().await;
                        }
                    }
                    SessionEvent::Kill { target, query_only } => {
                        let mailbox = self
                            .controls
                            .lock()
                            .ok()
                            .and_then(|c| c.get(&target).cloned());
                        if let Some(mailbox) = mailbox {
                            mailbox.post(if query_only {
                                KILL_QUERY
                            } else {
                                KILL_CONNECTION
                            });
                        }
                    }
                    SessionEvent::StartBackendTls {
                        id,
                        server_name,
                        ssl_request,
                        ca,
                    } => {
                        // Bytes queued for other backends are written by the loop below;
                        // this backend has nothing queued before its SSLRequest.
                        match self
                            .backend_tls(backends, id, &server_name, &ssl_request, ca)
                            .await
                        {
                            Ok(()) => session.handle_backend_tls_established(id),
                            Err(e) => {
                                tracing::warn!(conn = session.connection_id(), backend = id, error = %e, "TLS toward the shard failed");
                                backends.remove(&id);
                                session.handle_backend_close(id);
                            }
                        }
                    }
                    SessionEvent::StartTls { preamble } => {
                        // Nothing is due before TLS, but keep the byte order regardless.
                        if let Some(bytes) = session.poll_client_transmit() {
                            client.write_all(&bytes).await?;
                        }
                        match self.start_tls(client, preamble).await {
                            Ok(info) => session.handle_tls_established(info),
                            Err(e) => {
                                tracing::warn!(conn = session.connection_id(), error = %e, "TLS handshake failed; closing client connection");
                                session.handle_client_close();
                                return Err(e);
                            }
                        }
                    }
                }
            }
            while let Some((id, bytes)) = session.backend_transmit() {
                let failed = match backends.get_mut(&id) {
                    Some(b) => {
                        let tls = matches!(b.stream, BackendStream::Tls(_));
                        touched |= tls;
                        // rustls may hold records back until flushed.
                        write_out::<N, _>(&mut b.stream, bytes).await.is_err()
                            || (tls && b.stream.flush().await.is_err())
                    }
                    None => false,
                };
                session.backend_transmitted(id);
                if failed {
                    told = true;
                    backends.remove(&id);
                    session.handle_backend_close(id);
                }
            }
            let bytes = session.client_transmit();
            if !bytes.is_empty() {
                let written = write_out::<N, _>(client, bytes).await;
                session.client_transmitted();
                written?;
                if client.is_tls() {
                    // rustls may hold records back until flushed.
                    client.flush().await?;
                    touched = true;
                }
            }
            if !told {
                return Ok(touched);
            }
        }
    }

    /// Gets backend `id` a connection: from the tablet's pool when `pooled` (an idle one is
    /// adopted by the session, preferably one carrying the session's `settings`, else a new
    /// one is opened within the pool's capacity), else a new one outside any pool.
    async fn open_backend(
        &self,
        session: &mut Session,
        backends: &mut Slots<Backend<N::Stream>>,
        id: BackendId,
        address: &ShardAddress,
        pooled: bool,
        settings: Option<&Arc<str>>,
    ) {
        let pool = if pooled {
            self.pools.get(address)
        } else {
            None
        };
        let found_rows = session.found_rows();
        let lease = match pool {
            None => None,
            Some(pool) => loop {
                match pool.acquire(&self.clock, settings, found_rows).await {
                    Err(e) => {
                        tracing::warn!(conn = session.connection_id(), backend = id, error = %e, "no pooled connection");
                        session.handle_backend_error(id, e);
                        return;
                    }
                    Ok(Acquired::Reuse(mut idle, lease)) => {
                        if !is_alive(&mut idle.stream) {
                            // Closed by the server while idle (wait_timeout, restart): drop it
                            // (its capacity goes back) and try again.
                            continue;
                        }
                        if idle.conn.found_rows() != found_rows {
                            // Its affected-row counts are not the ones this client asked for
                            // (a capability is fixed at the handshake): close it, open another.
                            continue;
                        }
                        if idle.home != workers::current() {
                            // Released on another worker runtime: register it with ours.
                            idle.stream = match idle.stream {
                                BackendStream::Net(s) => match N::rehome(s) {
                                    Ok(s) => BackendStream::Net(s),
                                    Err(_) => continue,
                                },
                                // TLS and in-process streams work from any runtime as they are.
                                other => other,
                            };
                        }
                        backends.insert(
                            id,
                            Backend {
                                stream: idle.stream,
                                lease: Some(lease),
                                waker: None,
                            },
                        );
                        session.adopt_backend(id, idle.conn);
                        return;
                    }
                    Ok(Acquired::Open(lease)) => break Some(lease),
                }
            },
        };
        match self.open(address).await {
            Ok(stream) => {
                backends.insert(
                    id,
                    Backend {
                        stream,
                        lease,
                        waker: None,
                    },
                );
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                tracing::warn!(conn = session.connection_id(), backend = id, error = %e, "cannot connect to shard");
                session.handle_backend_error(
                    id,
                    shardgate_core::SqlError::new(
                        shardgate_core::error::codes::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                        "HY000",
                        format!("Unable to connect to shard: {e}"),
                    ),
                );
            }
            Err(e) => {
                tracing::warn!(conn = session.connection_id(), backend = id, error = %e, "cannot connect to shard");
                session.handle_backend_close(id);
            }
        }
    }

    /// Runs the server side of the TLS handshake on the (plain) client stream, `preamble`
    /// first, within the handshake timeout.
    async fn start_tls(
        &self,
        client: &mut ClientStream<N::Stream>,
        preamble: bytes::Bytes,
    ) -> io::Result<TlsInfo> {
        let Some(acceptor) = self.tls.get().cloned() else {
            return Err(io::Error::other(
                "client asked for TLS but no certificate is configured",
            ));
        };
        let plain = match std::mem::replace(client, ClientStream::Gone) {
            ClientStream::Plain(s) => s,
            other => {
                *client = other;
                return Err(io::Error::other("client asked for TLS twice"));
            }
        };
        let handshake = acceptor.accept(Prefixed::new(preamble, plain));
        let limit_ms = self.gateway.limits.handshake_timeout_ms;
        let tls = if limit_ms == 0 {
            handshake.await?
        } else {
            self.clock
                .timeout(std::time::Duration::from_millis(limit_ms), handshake)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??
        };
        let info = crate::tls::negotiated(tls.get_ref().1);
        *client = ClientStream::Tls(Box::new(tls));
        Ok(info)
    }

    /// Sends the SSLRequest in clear on backend `id`, then runs the client side of the TLS
    /// handshake, within the handshake timeout.
    async fn backend_tls(
        &self,
        backends: &mut Slots<Backend<N::Stream>>,
        id: BackendId,
        server_name: &str,
        ssl_request: &[u8],
        ca: Option<String>,
    ) -> io::Result<()> {
        let cached = self.shard_tls.lock().ok().and_then(|m| m.get(&ca).cloned());
        let connector = match cached {
            Some(c) => c,
            None => {
                let c = crate::tls::shard_connector(ca.as_deref()).map_err(io::Error::other)?;
                if let Ok(mut m) = self.shard_tls.lock() {
                    m.insert(ca, c.clone());
                }
                c
            }
        };
        let Some(Backend {
            stream: BackendStream::Net(mut plain),
            lease,
            ..
        }) = backends.remove(&id)
        else {
            return Err(io::Error::other(
                "TLS is only possible toward a network shard",
            ));
        };
        plain.write_all(ssl_request).await?;
        let handshake = connector.connect(crate::tls::server_name(server_name), plain);
        let limit_ms = self.gateway.limits.handshake_timeout_ms.max(1);
        let tls = self
            .clock
            .timeout(std::time::Duration::from_millis(limit_ms), handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        backends.insert(
            id,
            Backend {
                stream: BackendStream::Tls(Box::new(tls)),
                lease,
                waker: None,
            },
        );
        Ok(())
    }

    async fn open(&self, address: &ShardAddress) -> io::Result<BackendStream<N::Stream>> {
        match address {
            ShardAddress::Mysql { host, port, .. } => {
                let addr = format!("{host}:{port}");
                let ms = self.gateway.limits.shard_connect_timeout_ms;
                let due = self.clock.now_us() + ms.saturating_mul(1000);
                let clock = &self.clock;
                tokio::select! {
                    s = self.net.connect(&addr) => Ok(BackendStream::Net(s?)),
                    _ = clock.sleep_until_us(due), if ms > 0 => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no TCP connection to {addr} within {ms} ms"),
                    )),
                }
            }
            ShardAddress::Embedded { name, .. } => Ok(BackendStream::Embedded(
                self.embedded.connect(name, self.clock.clone())?,
            )),
        }
    }
}

enum Input {
    /// [`Mailbox`] request bits.
    Control(u8),
    Client(io::Result<usize>),
    Backend(BackendId, io::Result<usize>),
    /// The session's timer fired.
    Timeout,
}

/// What [`read_any`] waits on besides the sockets.
struct Sources<'a> {
    mailbox: &'a Mailbox,
    stored_waker: &'a mut Option<Waker>,
    /// Which sockets to poll; the client's own waker.
    wakeups: &'a mut Wakeups,
    client_waker: &'a mut Option<Waker>,
    /// Which backends to read: not those whose merge queue is full (backpressure).
    session: &'a Session,
    /// The armed timer, and whether it has been polled since it was reset: once it holds our
    /// waker, checking whether it fired is an atomic load instead of a poll.
    timer: Option<(Pin<&'a mut Sleep>, &'a mut bool)>,
    /// Polls in a row that found input ([`INPUTS_PER_TURN`]).
    streak: &'a mut u32,
}

/// Waits until a mailbox request, the client, any backend or the timer has something. The
/// mailbox comes first, so a KILL is never starved by a busy stream. While a statement runs,
/// the answer it waits for comes from a backend, so backends are read before the client
/// (whose next command waits anyway): the wake-up that brings the answer does not first poll
/// an idle client socket. The client is still polled, and its waker registered, whenever no
/// backend has bytes; a client gone mid-stream also shows as a failed write. A socket is
/// polled only when it woke the task or was not polled since it last had bytes ([`Wakeups`]).
async fn read_any<N: Net>(
    mut sources: Sources<'_>,
    client: &mut ClientStream<N::Stream>,
    backends: &mut Slots<Backend<N::Stream>>,
    buf: &mut [u8],
) -> Input {
    poll_fn(|cx| {
        if let Some(r) = sources.mailbox.poll_take(cx, sources.stored_waker) {
            return Poll::Ready(Input::Control(r));
        }
        if *sources.streak >= INPUTS_PER_TURN {
            *sources.streak = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        *sources.streak += 1;
        let wakeups = &mut *sources.wakeups;
        if wakeups.begin(cx) {
            *sources.client_waker = None;
            backends.values_mut().for_each(|b| b.waker = None);
        }
        let client_waker = &*sources
            .client_waker
            .get_or_insert_with(|| wakeups.waker(cx, CLIENT));
        let busy = sources.session.is_busy();
        if !busy && wakeups.is_dirty(CLIENT) {
            if let Poll::Ready(r) = poll_recv::<N, _>(client, client_waker, buf) {
                return Poll::Ready(Input::Client(r));
            }
        }
        // Backends not read now (backpressure) stay due.
        let mut kept = 0;
        for (id, b) in backends.iter_mut() {
            let bit = backend_bit(*id);
            let waker = &*b.waker.get_or_insert_with(|| wakeups.waker(cx, bit));
            if !wakeups.is_dirty(bit) {
                continue;
            }
            if !sources.session.wants_backend_input(*id) {
                kept |= bit;
                continue;
            }
            if let Poll::Ready(r) = poll_recv::<N, _>(&mut b.stream, waker, buf) {
                return Poll::Ready(Input::Backend(*id, r));
            }
        }
        if busy && wakeups.is_dirty(CLIENT) {
            if let Poll::Ready(r) = poll_recv::<N, _>(client, client_waker, buf) {
                return Poll::Ready(Input::Client(r));
            }
        }
        wakeups.settle(kept);
        if let Some((timer, polled)) = sources.timer.as_mut() {
            let fired = if **polled {
                timer.is_elapsed()
            } else {
                **polled = true;
                timer.as_mut().poll(cx).is_ready()
            };
            if fired {
                return Poll::Ready(Input::Timeout);
            }
        }
        *sources.streak = 0;
        Poll::Pending
    })
    .await
}

/// A stream that may be a bare socket of the network (no TLS, not in-process).
trait Socket<S> {
    fn socket(&self) -> Option<&S>;
    fn socket_mut(&mut self) -> Option<&mut S>;
}

impl<S> Socket<S> for ClientStream<S> {
    fn socket(&self) -> Option<&S> {
        self.plain()
    }
    fn socket_mut(&mut self) -> Option<&mut S> {
        self.plain_mut()
    }
}

impl<S> Socket<S> for BackendStream<S> {
    fn socket(&self) -> Option<&S> {
        match self {
            BackendStream::Net(s) => Some(s),
            _ => None,
        }
    }
    fn socket_mut(&mut self) -> Option<&mut S> {
        match self {
            BackendStream::Net(s) => Some(s),
            _ => None,
        }
    }
}

/// Writes `bytes`: straight to the socket when it takes them all (the common small answer
/// or command), else the rest through the async writer, which waits for room.
async fn write_out<N: Net, W: AsyncWrite + Unpin + Socket<N::Stream>>(
    stream: &mut W,
    bytes: &[u8],
) -> io::Result<()> {
    let sent = match stream.socket().map(|s| N::try_write(s, bytes)) {
        Some(Ok(n)) => n,
        Some(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
        _ => 0,
    };
    if sent < bytes.len() {
        stream.write_all(&bytes[sent..]).await?;
    }
    Ok(())
}

/// Reads into `buf` with `waker`: a bare socket through the network's own read
/// ([`Net::poll_recv`]), anything else (TLS, in-process) through its async reader.
fn poll_recv<N: Net, R: AsyncRead + Unpin + Socket<N::Stream>>(
    stream: &mut R,
    waker: &Waker,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut cx = Context::from_waker(waker);
    match stream.socket_mut() {
        Some(socket) => N::poll_recv(socket, &mut cx, buf),
        None => crate::net::poll_read_into(stream, &mut cx, buf),
    }
}

/// An idle pooled socket is alive when reading would block: end-of-stream, an error or
/// unexpected bytes mean the server closed it (or it is out of step) while it sat idle.
fn is_alive<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut byte = [0u8; 1];
    matches!(
        crate::net::poll_read_into(stream, &mut cx, &mut byte),
        Poll::Pending
    )
}

/// Closes pooled connections idle past the idle timeout, until the driver is gone.
async fn expire_idle_backends<N: Net>(driver: std::sync::Weak<Driver<N>>) {
    loop {
        let (clock, every_ms) = match driver.upgrade() {
            Some(d) => {
                let ms = d.gateway.limits.pool.idle_timeout_ms;
                if ms == 0 {
                    return;
                }
                (d.clock.clone(), (ms / 4).clamp(100, 10_000))
            }
            None => return,
        };
        clock.sleep_until_ms(clock.now_ms() + every_ms).await;
        match driver.upgrade() {
            Some(d) => {
                let n = d.pools.expire_idle(d.clock.now_us());
                if n > 0 {
                    tracing::debug!(closed = n, "closed idle backend connections");
                }
            }
            None => return,
        }
    }
}

/// A backend socket: over the network, or a pipe to an in-process engine.
pub enum BackendStream<S> {
    Net(S),
    /// A network shard after `?ssl=true`'s TLS handshake.
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
    Embedded(DuplexStream),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for BackendStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Net(s) => Pin::new(s).poll_read(cx, buf),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            BackendStream::Embedded(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for BackendStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendStream::Net(s) => Pin::new(s).poll_write(cx, buf),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            BackendStream::Embedded(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Net(s) => Pin::new(s).poll_flush(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            BackendStream::Embedded(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Net(s) => Pin::new(s).poll_shutdown(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            BackendStream::Embedded(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wakeups::CountWakes;
    use shardgate_core::gateway::Topology;
    use shardgate_core::server::ServerConfig;
    use std::sync::atomic::AtomicUsize;

    /// A network whose sockets never run dry (a result longer than any buffer) and whose
    /// reads, like [`crate::net::TokioNet`]'s, spend no cooperative budget: nothing but the
    /// driver's own turn limit makes such a session let its neighbours run.
    #[derive(Clone)]
    struct Endless;

    struct EndlessStream;

    impl AsyncRead for EndlessStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = buf.remaining();
            buf.initialize_unfilled().fill(0);
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for EndlessStream {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Net for Endless {
        type Stream = EndlessStream;
        type Listener = ();
        async fn bind(&self, _: &str) -> io::Result<()> {
            Err(io::Error::other("not a listening network"))
        }
        async fn accept(_: &mut ()) -> io::Result<(EndlessStream, String)> {
            Err(io::Error::other("not a listening network"))
        }
        async fn connect(&self, _: &str) -> io::Result<EndlessStream> {
            Ok(EndlessStream)
        }
        fn local_addr(_: &()) -> io::Result<String> {
            Ok(String::new())
        }
    }

    /// A session whose client socket always has bytes takes [`INPUTS_PER_TURN`] of them in a
    /// row, then returns `Pending` once with its task woken (queued behind the thread's other
    /// ready tasks), then reads on.
    #[test]
    fn an_endless_socket_yields_the_thread_after_a_turn_of_inputs() {
        let gateway = Gateway::new(
            ServerConfig::default(),
            Topology::embedded(&[("ks", "0")], "ks"),
        );
        let session = Session::new(gateway, 1, [b'x'; 20]);
        let mut client = ClientStream::Plain(EndlessStream);
        let mut backends: Slots<Backend<EndlessStream>> = Slots::new();
        let mut buf = [0u8; 16];
        let (mailbox, mut stored_waker) = (Mailbox::default(), None);
        let (mut wakeups, mut client_waker, mut streak) = (Wakeups::default(), None, 0);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let task = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&task);
        let mut outcomes = Vec::new();
        for _ in 0..2 * (INPUTS_PER_TURN + 1) {
            let sources = Sources {
                mailbox: &mailbox,
                stored_waker: &mut stored_waker,
                wakeups: &mut wakeups,
                client_waker: &mut client_waker,
                session: &session,
                timer: None,
                streak: &mut streak,
            };
            let read = std::pin::pin!(read_any::<Endless>(
                sources,
                &mut client,
                &mut backends,
                &mut buf
            ))
            .poll(&mut cx);
            outcomes.push(match read {
                Poll::Ready(Input::Client(Ok(16))) => 'r',
                Poll::Pending => 'p',
                _ => panic!("unexpected input"),
            });
        }
        let turn = "r".repeat(INPUTS_PER_TURN as usize) + "p";
        assert_eq!(outcomes.iter().collect::<String>(), turn.repeat(2));
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            2,
            "each yield wakes its own task, so it runs again after the others"
        );
    }
}
