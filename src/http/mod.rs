//! The link server: what outside parties open in a browser. hyper (HTTP/1.1, and
//! HTTP/2 over TLS: `tls.rs`) on the shared accept loop. Link rules come from `policy::links` only.
//!
//! - `routes.rs`: routing; `respond.rs`: protective headers and the small
//!   responses every handler shares; `context.rs`: what every request shares;
//! - `visit.rs`: a request's link and grant; `landing.rs`: the landing page, the
//!   password, e-mail and code forms;
//! - `target.rs`: where an item's bytes live, with the share re-checks;
//! - `download.rs`: files (Range) and folder pages; `conditional.rs`: their
//!   validators (`ETag`, `Last-Modified`) and conditional requests;
//!   `direct.rs`: 303 to a presigned GET on connectors with direct downloads;
//!   `meter.rs`: bodies that settle the use and write the audit row when the
//!   bytes stop;
//! - `sendfile.rs`: the kernel copy (`sendfile`) of local files' downloads
//!   over plain HTTP;
//! - `zip.rs`: "download all" as a streamed zip;
//! - `client.rs`: the client's address and scheme behind trusted reverse proxies;
//! - `forms.rs`: cookies, form bodies, CSRF; `pages.rs`: the HTML;
//! - `assets.rs`: embedded scripts (`static/`) and the logo;
//! - `upload.rs`: the upload page of upload requests and their endpoints;
//!   `tus.rs`: the resumable upload protocol (tus 1.0) they speak;
//! - `staff/`: the staff pages under `/app` (login sessions, dashboard, link
//!   details and actions).

mod assets;
pub mod client;
mod conditional;
mod context;
mod direct;
mod direct_upload;
mod download;
pub(crate) mod forms;
mod landing;
mod meter;
pub mod pages;
mod respond;
mod routes;
mod sendfile;
mod staff;
mod target;
pub mod tls;
mod tus;
mod upload;
mod visit;
mod zip;

pub use context::{Body, HttpContext};
pub(crate) use respond::json;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves the link server on `listener` until `shutdown` turns true.
///
/// Slow clients cannot hold connections: a request's head must arrive whole
/// within `header_timeout` of when the server starts waiting for it (hyper's
/// timer is a total deadline, so trickling bytes does not stretch it), and a
/// connection with no request in flight and no byte of a next one for
/// `keepalive_timeout` is closed. The gate
/// caps connections per address; one that has not yet sent a whole request counts
/// as unauthenticated.
pub async fn serve(listener: TcpListener, ctx: Arc<HttpContext>, shutdown: watch::Receiver<bool>) {
    let c = &ctx.config;
    let gate = crate::net::Gate::behind(
        crate::net::Limits {
            max_sessions: c.max_connections,
            max_per_address: c.max_per_address,
            max_unauthenticated_per_address: c.max_unauthenticated_per_address,
            login_grace: None,
        },
        ctx.auth.known(),
        c.trusted_proxies.clone(),
    );
    let handle = |tcp, peer, ticket: crate::net::Ticket, mut force: watch::Receiver<bool>| {
        let ctx = ctx.clone();
        let activity = Arc::new(Activity::new());
        let (header_timeout, keepalive) = (ctx.config.header_timeout, ctx.config.keepalive_timeout);
        async move {
            let tracker = activity.clone();
            // Plain HTTP only: over TLS every byte must pass through rustls.
            let outlet = ctx.tls.is_none().then(sendfile::Outlet::new).flatten();
            let watched = Watched {
                tcp,
                activity: activity.clone(),
                outlet: outlet.clone(),
            };
            let Some(io) = tls::accept(ctx.tls.as_ref(), watched).await else {
                return;
            };
            let builder = tls::builder(&io, header_timeout);
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                ticket.authenticated();
                if let Some(o) = &outlet {
                    req.extensions_mut().insert(o.clone());
                }
                let busy = tracker.begin();
                let ctx = ctx.clone();
                async move {
                    // The one place the client's address is derived; everything
                    // below (audit, throttles, defender) sees this one.
                    let client = client::derive(&ctx.config.trusted_proxies, peer, req.headers());
                    let mut resp =
                        client::scope(client, routes::handle(&ctx, client.addr, req)).await;
                    tls::headers(ctx.tls.is_some(), resp.headers_mut());
                    Ok::<_, std::convert::Infallible>(resp.map(|body| {
                        http_body_util::BodyExt::boxed_unsync(Tracked { body, _busy: busy })
                    }))
                }
            });
            let conn = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = activity.idle_for(keepalive) => {}
                _ = crate::shutdown::stopped(&mut force) => {}
            }
            // Closes at once when idle, else after the response in flight.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    };
    let refuse = |_tcp| async {};
    crate::net::serve("http", listener, gate, shutdown, handle, refuse).await;
}

/// When a connection last finished a response, how many are in flight, and
/// whether bytes of a next request came since (then the head deadline rules).
struct Activity {
    state: std::sync::Mutex<(usize, tokio::time::Instant)>,
    heard: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: std::sync::Mutex::new((0, tokio::time::Instant::now())),
            heard: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.state.lock().expect("activity lock").0 += 1;
        Busy(self.clone())
    }

    /// Resolves once no request has been in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let (busy, since) = *self.state.lock().expect("activity lock");
            let heard = self.heard.load(std::sync::atomic::Ordering::Relaxed);
            if busy == 0 && !heard && since.elapsed() >= limit {
                return;
            }
            // Busy: look again later; else when the limit ends.
            let wake = if busy > 0 || heard {
                tokio::time::Instant::now() + limit
            } else {
                since + limit
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A request in flight, until its response body is done or dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("activity lock");
        state.0 = state.0.saturating_sub(1);
        state.1 = tokio::time::Instant::now();
        self.0
            .heard
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The connection's socket, telling [`Activity`] when request bytes arrive;
/// on plain HTTP it sends downloads' placeholder bytes from their files
/// (`sendfile.rs`).
struct Watched {
    tcp: tokio::net::TcpStream,
    activity: Arc<Activity>,
    outlet: Option<sendfile::Outlet>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity
                .heard
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        res
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Some(o) = &this.outlet {
            return o.poll_write_vectored(&mut this.tcp, cx, &[std::io::IoSlice::new(data)]);
        }
        std::pin::Pin::new(&mut this.tcp).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Some(o) = &this.outlet {
            return o.poll_write_vectored(&mut this.tcp, cx, bufs);
        }
        std::pin::Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
