//! Link downloads of local files over plain HTTP sent by the kernel
//! (`sendfile(2)`: page cache to socket, no copy through wharf).
//!
//! Why this shape: hyper owns the socket and writes only the buffers a response
//! body hands it, so a body cannot say "send this file". Instead the download's
//! body ([`Outlet::body`]) yields frames that are slices of one private buffer
//! of zeros — placeholders adding up to the range's length — and queues the
//! file and range on its connection's [`Outlet`]. hyper, writing to a vectored
//! IO (the plain socket; `tls::builder` sets `writev(true)`), queues body
//! `Bytes` as they are and hands them to `poll_write_vectored` without copying,
//! so the connection's socket wrapper sees the placeholders' own addresses:
//! [`Outlet::poll_write_vectored`] writes real bytes (the response head, other
//! responses) normally and, for placeholder bytes, calls `sendfile` from the
//! file at the head of the queue, reporting as written exactly what the kernel
//! sent. Responses on an HTTP/1.1 connection are written in order and each
//! body queues its range when hyper first asks it for bytes, so keep-alive
//! downloads each map to their own file.
//!
//! `sendfile` runs on the async threads, so it must not wait for the disk:
//! before each chunk's placeholder is handed out, a non-waiting probe
//! (`preadv2(RWF_NOWAIT)`) asks whether its pages are cached, and a cold chunk
//! is read on the blocking pool first (a copy, but only where the disk is the
//! limit anyway).
//!
//! What guards it: an outlet exists only on plain-HTTP connections (never TLS,
//! where bytes must pass through rustls; HTTP/2 is TLS-only here), and only a
//! download whose session opened a local file gets a placeholder body
//! (`http/download.rs`; object stores and zips keep the streamed path). A
//! placeholder byte with no file queued, or a file that ends early (truncated
//! since it was opened), is an error that closes the connection: zeros never
//! reach a client. The file was opened by the Session layer with its checks and
//! its jail (`Download::local_file`). The body still passes through
//! `meter.rs`, so uses, audit rows and byte counters are settled as before.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::vfs::ByteStream;

/// Length of the placeholder buffer and so the largest body frame. hyper asks
/// for the next frame once less than 64 KiB wait to be written, so this is also
/// about how far the meter's count may run ahead of the socket (an aborted
/// download's audit row counts what was handed to hyper, as when streamed).
const CHUNK: usize = 1024 * 1024;

/// Shorter downloads are streamed: one write either way, and files this small
/// were read whole when opened (`vfs/local_read.rs`).
pub const MIN_LEN: u64 = 64 * 1024;

/// Most bytes one `sendfile` call may move (the kernel's own limit).
const MAX_SEND: usize = 0x7fff_f000;

/// The placeholder buffer: a leaked allocation of its own, so no other `Bytes`
/// can point into it (calloc'd: its pages are never touched, never resident).
fn placeholder() -> &'static [u8] {
    static ZEROS: OnceLock<&'static [u8]> = OnceLock::new();
    ZEROS.get_or_init(|| Box::leak(vec![0u8; CHUNK].into_boxed_slice()))
}

/// Whether `s` is (part of) the placeholder buffer.
fn is_placeholder(s: &[u8]) -> bool {
    let p = placeholder();
    let (start, end) = (p.as_ptr() as usize, p.as_ptr() as usize + p.len());
    let at = s.as_ptr() as usize;
    !s.is_empty() && at >= start && at + s.len() <= end
}

/// A file range still to be sent.
struct Segment {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

/// A placeholder body's state: its range is queued on the first poll; each
/// chunk's pages are brought into the page cache (off the async threads) before
/// its placeholder is handed to hyper.
struct Feed {
    outlet: Outlet,
    queued: bool,
    file: Arc<File>,
    at: u64,
    end: u64,
    /// The buffer a cold chunk is read into, kept for the next one.
    scratch: Vec<u8>,
}

/// One plain-HTTP connection's queue of file ranges the kernel sends in place
/// of placeholder bytes.
#[derive(Clone)]
pub struct Outlet(Arc<Mutex<VecDeque<Segment>>>);

impl Outlet {
    /// An outlet for a plain-HTTP connection; `None` where the kernel copy is
    /// not built (not Linux).
    pub fn new() -> Option<Outlet> {
        cfg!(target_os = "linux").then(|| Outlet(Arc::new(Mutex::new(VecDeque::new()))))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Segment>> {
        // A panic while holding it leaves at worst a wrong queue, and the
        // connection it belongs to is gone with the panicking task.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body of `range` of `file` (clamped to the file's `size` at open, as a
    /// streamed body is): placeholder frames adding up to its length. The range
    /// is queued when hyper first asks for the body, so a response that is
    /// never written queues nothing.
    pub fn body(&self, file: Arc<File>, range: Range<u64>, size: u64) -> ByteStream {
        let range = range.start.min(size)..range.end.min(size);
        if range.is_empty() {
            return stream::empty().boxed();
        }
        advise_sequential(&file, &range);
        let feed = Feed {
            outlet: self.clone(),
            queued: false,
            file,
            at: range.start,
            end: range.end,
            scratch: Vec::new(),
        };
        stream::unfold(feed, |mut f| async move {
            if !f.queued {
                f.queued = true;
                f.outlet.queue().push_back(Segment {
                    file: f.file.clone(),
                    offset: f.at,
                    left: f.end - f.at,
                });
            }
            if f.at == f.end {
                return None;
            }
            let n = (f.end - f.at).min(CHUNK as u64) as usize;
            if !cached(&f.file, f.at, n) {
                f.scratch = warm(f.file.clone(), f.at, n, std::mem::take(&mut f.scratch)).await;
            }
            f.at += n as u64;
            Some((Ok(Bytes::from_static(&placeholder()[..n])), f))
        })
        .boxed()
    }

    /// Writes `bufs` to `tcp` in order: real bytes with `writev`, placeholder
    /// bytes with `sendfile` from the queued files. Returns how many bytes of
    /// `bufs` were sent; `Pending` only when none could be.
    pub fn poll_write_vectored(
        &self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut done = 0;
        let mut i = 0;
        while i < bufs.len() {
            let (res, want) = if is_placeholder(&bufs[i]) {
                let want = bufs[i].len();
                i += 1;
                (self.poll_send(tcp, cx, want), want)
            } else {
                let from = i;
                while i < bufs.len() && !is_placeholder(&bufs[i]) {
                    i += 1;
                }
                let want = bufs[from..i].iter().map(|b| b.len()).sum();
                if want == 0 {
                    continue;
                }
                let res = std::pin::Pin::new(&mut *tcp).poll_write_vectored(cx, &bufs[from..i]);
                (res, want)
            };
            match res {
                Poll::Ready(Ok(n)) => {
                    done += n;
                    if n < want {
                        break;
                    }
                }
                // What was sent is reported; the error comes again on the next call.
                Poll::Ready(Err(_)) | Poll::Pending if done > 0 => break,
                other => return other,
            }
        }
        Poll::Ready(Ok(done))
    }

    /// Sends up to `want` placeholder bytes from the file at the queue's head.
    fn poll_send(
        &self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        let mut queue = self.queue();
        let Some(seg) = queue.front_mut() else {
            tracing::error!("placeholder bytes without a file to send; closing the connection");
            return Poll::Ready(Err(io::Error::other("no file queued for sendfile")));
        };
        let count = (want as u64).min(seg.left).min(MAX_SEND as u64) as usize;
        loop {
            std::task::ready!(tcp.poll_write_ready(cx))?;
            match tcp.try_io(tokio::io::Interest::WRITABLE, || {
                send(tcp, &seg.file, &mut seg.offset, count)
            }) {
                Ok(0) => {
                    tracing::warn!("a file shrank while it was sent; closing the connection");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended before the promised length",
                    )));
                }
                Ok(n) => {
                    seg.left -= n as u64;
                    if seg.left == 0 {
                        queue.pop_front();
                    }
                    crate::metrics::http_sendfile_bytes(n as u64);
                    return Poll::Ready(Ok(n));
                }
                // Readiness was cleared: the next poll registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Whether the first and last page of `len` bytes at `at` are in the page
/// cache (a non-waiting one-byte read of each). `sendfile` runs on the async
/// threads: a page it had to wait for from disk (or a network file system)
/// would hold one of them. Where the probe is not supported, yes.
#[cfg(target_os = "linux")]
fn cached(file: &File, at: u64, len: usize) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    [at, at + len as u64 - 1].iter().all(|&off| {
        let iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: one iovec over a live one-byte buffer; the descriptor is open.
        let n = unsafe {
            libc::preadv2(
                file.as_raw_fd(),
                &iov,
                1,
                off as libc::off_t,
                libc::RWF_NOWAIT,
            )
        };
        n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock
    })
}

#[cfg(not(target_os = "linux"))]
fn cached(_: &File, _: u64, _: usize) -> bool {
    true
}

/// Reads `len` bytes at `at` on the blocking pool, so the pages are cached
/// when `sendfile` sends them; returns the buffer for the next cold chunk.
/// A failed read is left to `sendfile` to meet (and close the connection).
async fn warm(file: Arc<File>, at: u64, len: usize, mut scratch: Vec<u8>) -> Vec<u8> {
    let read = tokio::task::spawn_blocking(move || {
        scratch.resize(len, 0);
        let mut done = 0;
        while done < len {
            match std::os::unix::fs::FileExt::read_at(
                &*file,
                &mut scratch[done..],
                at + done as u64,
            ) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        scratch
    });
    read.await.unwrap_or_default()
}

/// Tells the kernel `range` of `file` will be read in order (a larger
/// readahead): `sendfile` runs on the async threads, and a page it must wait
/// for from disk holds one of them, as a blocking read would.
#[cfg(target_os = "linux")]
fn advise_sequential(file: &File, range: &Range<u64>) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain advice call on an open descriptor; failure is harmless.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            range.start as libc::off_t,
            (range.end - range.start) as libc::off_t,
            libc::POSIX_FADV_SEQUENTIAL,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_sequential(_: &File, _: &Range<u64>) {}

/// One `sendfile(2)` of `count` bytes of `file` at `offset` (advanced by what
/// was sent) to the socket.
#[cfg(target_os = "linux")]
fn send(tcp: &TcpStream, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off = *offset as libc::off_t;
    // SAFETY: both descriptors are open for the call (borrowed), and `off` is a
    // valid off_t the kernel reads and advances.
    let n = unsafe { libc::sendfile(tcp.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}

#[cfg(not(target_os = "linux"))]
fn send(_: &TcpStream, _: &File, _: &mut u64, _: usize) -> io::Result<usize> {
    Err(io::Error::other("sendfile is built on Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn only_the_placeholder_buffer_is_recognised() {
        let p = placeholder();
        assert!(is_placeholder(&p[..10]));
        assert!(is_placeholder(&p[CHUNK - 1..]));
        assert!(!is_placeholder(&p[..0]));
        let zeros = vec![0u8; 16];
        assert!(!is_placeholder(&zeros));
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let out = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (into, _) = l.accept().await.unwrap();
        (out, into)
    }

    async fn write_all(o: &Outlet, tcp: &mut TcpStream, mut bufs: Vec<Bytes>) -> io::Result<()> {
        while !bufs.is_empty() {
            let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            let mut n =
                futures::future::poll_fn(|cx| o.poll_write_vectored(tcp, cx, &slices)).await?;
            drop(slices);
            while n > 0 {
                let first = bufs[0].len().min(n);
                let _ = bufs[0].split_to(first);
                n -= first;
                if bufs[0].is_empty() {
                    bufs.remove(0);
                }
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn placeholders_become_the_queued_files_bytes_in_order() {
        let (mut out, mut into) = pair().await;
        let o = Outlet(Arc::default());
        let (a, b): (Vec<u8>, Vec<u8>) = (
            (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect(),
            (0..200_000u32).map(|i| (i * 13 % 241) as u8).collect(),
        );
        let (fa, fb) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        std::os::unix::fs::FileExt::write_all_at(&fa, &a, 0).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&fb, &b, 0).unwrap();
        let mut frames = vec![Bytes::from_static(b"head-a ")];
        let body_a = o.body(Arc::new(fa), 5..2_500_000, a.len() as u64);
        frames.extend(body_a.map(|r| r.unwrap()).collect::<Vec<_>>().await);
        frames.push(Bytes::from_static(b" head-b "));
        let body_b = o.body(Arc::new(fb), 0..u64::MAX, b.len() as u64);
        frames.extend(body_b.map(|r| r.unwrap()).collect::<Vec<_>>().await);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            into.read_to_end(&mut got).await.unwrap();
            got
        });
        write_all(&o, &mut out, frames).await.unwrap();
        drop(out);
        let want = [&b"head-a "[..], &a[5..2_500_000], b" head-b ", &b].concat();
        assert!(reader.await.unwrap() == want);
        assert!(o.queue().is_empty());
    }

    #[tokio::test]
    async fn a_placeholder_without_a_file_is_an_error_not_zeros() {
        let (mut out, _into) = pair().await;
        let o = Outlet(Arc::default());
        let frames = vec![Bytes::from_static(&placeholder()[..100])];
        assert!(write_all(&o, &mut out, frames).await.is_err());
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_is_an_error() {
        let (mut out, _into) = pair().await;
        let o = Outlet(Arc::default());
        let f = tempfile::tempfile().unwrap();
        f.set_len(100_000).unwrap();
        // Opened at 200,000 bytes, 100,000 now.
        let frames: Vec<Bytes> = o
            .body(Arc::new(f), 0..200_000, 200_000)
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert!(write_all(&o, &mut out, frames).await.is_err());
    }

    #[tokio::test]
    async fn cold_pages_are_read_off_the_async_threads_before_they_are_sent() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        // On the source tree's disk: a tmpfs would keep the pages whatever is advised.
        let f = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &data, 0).unwrap();
        f.sync_all().unwrap();
        // SAFETY: advice on an open descriptor.
        unsafe {
            use std::os::fd::AsRawFd;
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
        assert!(
            !cached(&f, 0, data.len()),
            "the file's pages stayed cached: this file system ignores DONTNEED"
        );
        let f = Arc::new(f);
        let o = Outlet(Arc::default());
        let frames: Vec<Bytes> = o
            .body(f.clone(), 0..data.len() as u64, data.len() as u64)
            .map(|r| r.unwrap())
            .collect()
            .await;
        // Every chunk was brought in before its placeholder was handed out.
        for at in (0..data.len()).step_by(CHUNK) {
            assert!(cached(&f, at as u64, CHUNK.min(data.len() - at)), "{at}");
        }
        let (mut out, mut into) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            into.read_to_end(&mut got).await.unwrap();
            got
        });
        write_all(&o, &mut out, frames).await.unwrap();
        drop(out);
        assert!(reader.await.unwrap() == data);
    }
}
