//! The one seam between the driver and the network: production plugs in tokio's TCP,
//! the simulator plugs in turmoil's, and the driver code is the same.

use std::future::Future;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

/// Listening, accepting and connecting.
pub trait Net: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Listener: Send + 'static;

    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The next client and its peer address (for logs).
    fn accept(
        listener: &mut Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// The bound address (for logs and tests that bind port 0).
    fn local_addr(listener: &Self::Listener) -> io::Result<String>;
    /// Re-registers `stream` with the I/O driver of the runtime this is called on: a socket
    /// moving to another worker runtime ([`crate::workers`]). Identity by default (one
    /// runtime, or a network without per-runtime registration).
    fn rehome(stream: Self::Stream) -> io::Result<Self::Stream> {
        Ok(stream)
    }
    /// Writes what the socket takes now, without a waker (`WouldBlock` when it takes nothing
    /// or cannot tell): the driver's fast path for the common small write, which otherwise
    /// goes through the async writer. `WouldBlock` by default.
    fn try_write(stream: &Self::Stream, buf: &[u8]) -> io::Result<usize> {
        let _ = (stream, buf);
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// Real TCP through tokio, with TCP_NODELAY on both sides.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioNet;

impl Net for TokioNet {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn accept(listener: &mut Self::Listener) -> io::Result<(Self::Stream, String)> {
        let (s, peer) = listener.accept().await?;
        s.set_nodelay(true)?;
        Ok((s, peer.to_string()))
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<String> {
        Ok(listener.local_addr()?.to_string())
    }

    fn rehome(stream: Self::Stream) -> io::Result<Self::Stream> {
        tokio::net::TcpStream::from_std(stream.into_std()?)
    }

    fn try_write(stream: &Self::Stream, buf: &[u8]) -> io::Result<usize> {
        stream.try_write(buf)
    }
}
