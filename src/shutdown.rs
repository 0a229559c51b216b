//! Stopping: the flag every task watches, and the signals that raise it. A leaf
//! below every listener and job, so none of them depends on `app` to stop.

use tokio::sync::watch;

use crate::error::Result;

/// Resolves once the flag turns true (or its sender is gone). The watch guard is
/// dropped inside, so callers' futures stay `Send`.
pub async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// SIGINT/SIGTERM handlers, installed as early as possible: a signal that arrives
/// while wharf is still starting must stop it cleanly, not kill it. SIGHUP is
/// caught at the same moment (its default action would end the process); it
/// reloads (`crate::reload`).
pub struct ShutdownSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Installs the handlers; call inside the runtime, before anything else.
    pub fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignal {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: Some(signal(SignalKind::hangup())?),
        })
    }

    /// The SIGHUP stream, for `App::serve_with_reload` (once).
    pub fn take_hangup(&mut self) -> Option<tokio::signal::unix::Signal> {
        self.hup.take()
    }

    /// Resolves on the first SIGINT or SIGTERM (also one that came before the call).
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
