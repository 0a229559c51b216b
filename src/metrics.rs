//! Prometheus metrics: the process-wide recorder and what records into it
//! (served by [`crate::health`] on `[metrics] listen`).
//!
//! Counters are derived in few places: every login, transfer and link visit from
//! the audit event when it is recorded (`audit.rs` calls [`observe`]), sessions in
//! the shared accept loop (`net.rs` holds a [`SessionGuard`]), storage calls in
//! the connectors' timing layer (stat, create_dir, rename, presign). Recording through
//! the `metrics` macros costs nothing when no recorder is installed.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::event::AuditEvent;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("wharf_storage_operation_seconds".into()),
                    &[
                        0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            gauge!("wharf_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            wharf_connectors::set_timing_hook(storage_operation);
            handle
        })
        .clone()
}

/// Counts what an audit event says happened.
pub fn observe(ev: &AuditEvent) {
    let protocol = ev.protocol.clone();
    let result = ev.outcome.as_str();
    let transfer = |direction: &'static str| {
        counter!("wharf_transfers_total", "protocol" => protocol.clone(), "direction" => direction, "result" => result)
            .increment(1);
        if let Some(bytes) = ev.bytes {
            counter!("wharf_transfer_bytes_total", "protocol" => protocol.clone(), "direction" => direction)
                .increment(bytes);
        }
    };
    match ev.action.as_str() {
        "login" => counter!("wharf_logins_total", "protocol" => protocol.clone(), "result" => "ok")
            .increment(1),
        "login_failed" => {
            counter!("wharf_logins_total", "protocol" => protocol.clone(), "result" => "failed")
                .increment(1)
        }
        "address_banned" => counter!("wharf_defender_bans_total").increment(1),
        "upload" | "link_upload" => transfer("upload"),
        "download" | "link_download" | "link_zip" => transfer("download"),
        "link_open" | "link_unavailable" | "link_refused" => {
            counter!("wharf_link_visits_total", "result" => result).increment(1)
        }
        _ => {}
    }
}

/// One open session of `protocol`, counted while it lives.
pub struct SessionGuard(&'static str);

/// Counts a new session; the gauge goes down when the guard is dropped.
pub fn session(protocol: &'static str) -> SessionGuard {
    counter!("wharf_sessions_total", "protocol" => protocol).increment(1);
    gauge!("wharf_sessions_active", "protocol" => protocol).increment(1.0);
    SessionGuard(protocol)
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        gauge!("wharf_sessions_active", "protocol" => self.0).decrement(1.0);
    }
}

/// Times one storage call (the connectors' timing layer calls this).
pub fn storage_operation(connector: &str, operation: &'static str, took: Duration) {
    histogram!("wharf_storage_operation_seconds", "connector" => connector.to_string(), "operation" => operation)
        .record(took.as_secs_f64());
}

/// Bytes the link server handed to the kernel with `sendfile(2)` instead of
/// writing them itself (`http/sendfile.rs`); they are counted in
/// `wharf_transfer_bytes_total` too, like every download's bytes.
pub fn http_sendfile_bytes(bytes: u64) {
    counter!("wharf_http_sendfile_bytes_total").increment(bytes);
}
