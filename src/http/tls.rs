//! HTTPS for the link server: rustls (TLS 1.2 and 1.3 with rustls' aws-lc-rs
//! suites only: AES-GCM and ChaCha20-Poly1305 with ECDHE; no CBC, no RSA key
//! exchange), HTTP/2 or HTTP/1.1 by ALPN, served by hyper-util's `auto` builder;
//! HSTS on every response; and the optional plain-HTTP listener that redirects to
//! the HTTPS `base_url`. The certificate is a [`ReloadableCert`] (SIGHUP).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::certs::ReloadableCert;
use crate::error::{Error, Result};

/// A client must finish the TLS handshake within this (slow-loris).
const HANDSHAKE: Duration = Duration::from_secs(20);

/// HSTS: browsers remember for a year that this host speaks HTTPS only.
const HSTS: &str = "max-age=31536000";

/// The link server's TLS side.
#[derive(Clone)]
pub struct Https {
    acceptor: TlsAcceptor,
}

impl Https {
    /// Builds the TLS configuration around `certs`.
    pub fn new(certs: Arc<ReloadableCert>) -> Result<Https> {
        let mut config = rustls::ServerConfig::builder_with_provider(crate::certs::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::internal("TLS versions").with_source(e))?
            .with_no_client_auth()
            .with_cert_resolver(certs);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Https {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// An accepted connection, plain or TLS.
pub enum Conn<S = TcpStream> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S> Conn<S> {
    /// Whether the client chose HTTP/2 by ALPN.
    fn h2(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// Completes the TLS handshake if `https` is set; `None` when it fails or times
/// out (logged at debug: scanners and bad clients are routine).
pub async fn accept<S>(https: Option<&Https>, tcp: S) -> Option<Conn<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(https) = https else {
        return Some(Conn::Plain(tcp));
    };
    match tokio::time::timeout(HANDSHAKE, https.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(Conn::Tls(Box::new(s))),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// The connection builder for `conn`: HTTP/2 when ALPN chose it, else HTTP/1.1
/// (never guessed from the first bytes, so the header timeout holds from the start).
pub fn builder<S>(conn: &Conn<S>, header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // A client must send its headers promptly (slow-loris).
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(60));
    if let Conn::Plain(_) = conn {
        // Body bytes reach the socket as the body's own buffers (never copied
        // into hyper's): `sendfile.rs` recognises its placeholders by address.
        b.http1().writev(true);
    }
    if conn.h2() {
        b.http2_only()
    } else {
        b.http1_only()
    }
}

/// Adds HSTS when the link server speaks TLS.
pub fn headers(https: bool, h: &mut hyper::HeaderMap) {
    if https {
        h.insert(
            hyper::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Answers every plain-HTTP request on `listener` with a permanent redirect to
/// the same path and query under `base_url` (308, so a POST stays a POST).
pub async fn serve_redirect(
    listener: TcpListener,
    base_url: String,
    shutdown: watch::Receiver<bool>,
) {
    let base = Arc::new(base_url);
    let handle =
        |tcp: TcpStream, _peer, ticket: crate::net::Ticket, mut force: watch::Receiver<bool>| {
            let base = base.clone();
            async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        ticket.authenticated();
                        let base = base.clone();
                        async move { Ok::<_, std::convert::Infallible>(redirect(&base, &req)) }
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(20))
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(tcp), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = crate::shutdown::stopped(&mut force) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }
        };
    let refuse = |_tcp| async {};
    let gate = crate::net::Gate::service(256);
    crate::net::serve("http-redirect", listener, gate, shutdown, handle, refuse).await;
}

fn redirect<B>(
    base: &str,
    req: &Request<B>,
) -> Response<http_body_util::combinators::BoxBody<Bytes, io::Error>> {
    let tail = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut resp = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    match HeaderValue::from_str(&format!("{base}{tail}")) {
        Ok(location) => {
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(LOCATION, location);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}
