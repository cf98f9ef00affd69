//! The one seam between the driver and the network: production plugs in tokio's TCP,
//! the simulator plugs in turmoil's, and the driver code is the same.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

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
    /// Reads what the socket holds into `buf` (`Ok(0)`: end of stream), or registers the
    /// waker of `cx` and returns `Pending`: the driver's read of every input. The stream's
    /// own `poll_read` by default.
    fn poll_recv(
        stream: &mut Self::Stream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_read_into(stream, cx, buf)
    }
}

/// `AsyncRead::poll_read` into a plain slice: the number of bytes read (`Ok(0)`: end of
/// stream).
pub fn poll_read_into<R: AsyncRead + Unpin>(
    stream: &mut R,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    ready!(Pin::new(stream).poll_read(cx, &mut rb))?;
    Poll::Ready(Ok(rb.filled().len()))
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

    /// One `send` system call, made directly: glibc's `send` (like its `recv`) is a
    /// thread-cancellation point and brackets every call with two bookkeeping calls with
    /// atomics — 1.6% of shardgate's CPU under sysbench point selects, for both together.
    fn try_write(stream: &Self::Stream, buf: &[u8]) -> io::Result<usize> {
        stream.try_io(Interest::WRITABLE, || {
            Ok(rustix::net::send(
                stream,
                buf,
                rustix::net::SendFlags::NOSIGNAL,
            )?)
        })
    }

    /// tokio's `poll_read` without its generic machinery: a direct `recv` while the socket
    /// is known readable, and the waker registered only when it is not. Like tokio, a
    /// short read marks the socket drained (no second `recv` just to meet `EAGAIN`). Unlike
    /// tokio's, a read that finds bytes spends no cooperative budget (a thread-local access
    /// per read): the driver yields after a run of inputs instead.
    fn poll_recv(
        stream: &mut Self::Stream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut drained_after = 0;
            let read = stream.try_io(Interest::READABLE, || {
                let (n, _) =
                    rustix::net::recv(&*stream, &mut *buf, rustix::net::RecvFlags::empty())?;
                if n > 0 && n < buf.len() {
                    // Report "would block" so that tokio clears the readiness; the bytes
                    // are returned below.
                    drained_after = n;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match read {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if drained_after > 0 {
                        return Poll::Ready(Ok(drained_after));
                    }
                    ready!(stream.poll_read_ready(cx))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = TokioNet.bind("127.0.0.1:0").await.unwrap();
        let addr = TokioNet::local_addr(&listener).unwrap();
        let (connected, accepted) = tokio::join!(TokioNet.connect(&addr), async {
            TokioNet::accept(&mut { listener }).await
        });
        (connected.unwrap(), accepted.unwrap().0)
    }

    /// Reads once, waiting for bytes if there are none.
    async fn recv(stream: &mut tokio::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| TokioNet::poll_recv(stream, cx, buf)).await
    }

    #[tokio::test]
    async fn direct_reads_keep_order_wake_after_a_short_read_and_see_the_end() {
        let (mut a, mut b) = pair().await;
        a.write_all(b"0123456789").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        while got.len() < 10 {
            let n = recv(&mut b, &mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"0123456789");
        // The short read marked the socket drained; bytes that come later must still wake
        // the reader (the readiness was cleared, not lost).
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(TokioNet::poll_recv(&mut b, &mut cx, &mut buf).is_pending());
        a.write_all(b"ab").await.unwrap();
        assert_eq!(recv(&mut b, &mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
        drop(a);
        assert_eq!(recv(&mut b, &mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn direct_writes_send_what_the_socket_takes() {
        let (a, mut b) = pair().await;
        assert_eq!(TokioNet::try_write(&a, b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(recv(&mut b, &mut buf).await.unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }
}
