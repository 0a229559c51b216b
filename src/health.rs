//! The metrics listener (`[metrics] listen`; off without it): Prometheus text at
//! `/metrics`, `/healthz` (the process serves) and `/readyz` (the database and
//! every connector answer within a deadline), and `wharf ping`. The counters it
//! serves are recorded by [`crate::metrics`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wharf_connectors::Connector;

use crate::audit::AuditLog;
use crate::store::Db;

/// How long one readiness check may take.
pub const READY_DEADLINE: Duration = Duration::from_secs(5);

/// What `/metrics` and `/readyz` look at.
pub struct Health {
    pub handle: PrometheusHandle,
    pub db: Db,
    pub audit: AuditLog,
    pub connectors: Vec<Arc<Connector>>,
}

impl Health {
    /// The failed checks, by name, with a short reason (never a storage URL).
    pub async fn failures(&self) -> Vec<(String, String)> {
        let mut checks = Vec::new();
        let db = self.db.clone();
        checks.push((
            "database".to_string(),
            tokio::spawn(async move {
                match tokio::time::timeout(READY_DEADLINE, db.run(|s| s.user_count())).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("{:?}", e.kind())),
                    Err(_) => Err("no answer within the deadline".to_string()),
                }
            }),
        ));
        for c in &self.connectors {
            let c = c.clone();
            checks.push((
                format!("connector {}", c.name),
                tokio::spawn(async move {
                    // A key that never exists: "not found" is an answer. (Timed by
                    // the connector's own layer, like every stat.)
                    let probe = c.operator.stat(".wharf-ready-probe");
                    match tokio::time::timeout(READY_DEADLINE, probe).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e))
                            if e.kind() == wharf_connectors::opendal::ErrorKind::NotFound =>
                        {
                            Ok(())
                        }
                        Ok(Err(e)) => Err(e.kind().to_string()),
                        Err(_) => Err("no answer within the deadline".to_string()),
                    }
                }),
            ));
        }
        let mut failed = Vec::new();
        for (name, task) in checks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => failed.push((name, why)),
                Err(_) => failed.push((name, "check failed".to_string())),
            }
        }
        failed
    }

    fn render(&self) -> String {
        gauge!("wharf_audit_queue_depth").set(self.audit.queue_depth() as f64);
        counter!("wharf_audit_dropped_total").absolute(self.audit.dropped());
        self.handle.render()
    }
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, ctype: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

async fn route(health: &Health, req: Request<hyper::body::Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            health.render(),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let failed = health.failures().await;
            if failed.is_empty() {
                respond(
                    StatusCode::OK,
                    "application/json",
                    serde_json::json!({"status": "ready"}).to_string(),
                )
            } else {
                let list: Vec<_> = failed
                    .iter()
                    .map(|(check, error)| serde_json::json!({"check": check, "error": error}))
                    .collect();
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    serde_json::json!({"status": "not ready", "failed": list}).to_string(),
                )
            }
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until shutdown.
pub async fn serve(listener: TcpListener, health: Arc<Health>, shutdown: watch::Receiver<bool>) {
    let handle =
        |tcp, _peer: SocketAddr, ticket: crate::net::Ticket, mut force: watch::Receiver<bool>| {
            let health = health.clone();
            async move {
                let service = hyper::service::service_fn(move |req| {
                    ticket.authenticated();
                    let health = health.clone();
                    async move { Ok::<_, Infallible>(route(&health, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(20))
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
    crate::net::serve(
        "metrics",
        listener,
        crate::net::Gate::service(32),
        shutdown,
        handle,
        refuse,
    )
    .await;
}

/// `wharf ping`: asks a node's `/readyz` on `addr`; `Ok(body)` when ready.
pub fn ping(addr: SocketAddr) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(READY_DEADLINE * 3));
    write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    if reply.starts_with("HTTP/1.1 200") {
        Ok(body)
    } else {
        Err(body)
    }
}
