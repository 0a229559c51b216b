//! The accept loop every listener shares: a cap on sessions, one task per
//! connection, and a graceful end — stop accepting, let sessions finish for a
//! while, ask the rest to close, then cut what is left.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long running sessions may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How long sessions asked to close get before they are cut.
const FORCE: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown` turns true. `handle` runs each connection and
/// gets a flag that turns true when the session should close now; `refuse` answers
/// a connection over the `slots` limit (protocols that can, say why).
pub async fn serve<H, F, R, RF>(
    name: &'static str,
    listener: TcpListener,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
    refuse: R,
) where
    H: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let (force_tx, force_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = crate::app::stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(listener = name, %peer, "session limit reached; connection refused");
            tokio::spawn(refuse(tcp));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let session = handle(tcp, peer, force_rx.clone());
        let counted = crate::metrics::session(name);
        sessions.spawn(async move {
            let _slot = slot;
            let _counted = counted;
            session.await;
        });
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
    }
    drop(listener);
    if sessions.is_empty() {
        return;
    }
    tracing::info!(
        listener = name,
        open = sessions.len(),
        "waiting for sessions to finish"
    );
    if tokio::time::timeout(DRAIN, all_done(&mut sessions))
        .await
        .is_ok()
    {
        return;
    }
    let _ = force_tx.send(true);
    if tokio::time::timeout(FORCE, all_done(&mut sessions))
        .await
        .is_err()
    {
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
}

async fn all_done(sessions: &mut JoinSet<()>) {
    while sessions.join_next().await.is_some() {}
}
