//! Response bodies that know how a download ended. A [`Metered`] stream counts
//! the bytes it hands to hyper; when the stream ends (or is dropped because the
//! visitor went away) its [`Charge`] settles the use — charged when complete,
//! refunded otherwise (docs/links.md) — writes the audit row and, for a whole
//! file, notifies the link's creator (`crate::notify`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use hyper::body::Frame;

use hyper::{Response, StatusCode};

use super::respond::{page, refused};
use super::visit::Visit;
use super::{Body, HttpContext};
use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::notify::{Event, Notifier};
use crate::policy::links::Status;
use crate::policy::Protocol;
use crate::store::{now_ms, Db, Link, Ticket};
use crate::vfs::ByteStream;

/// What to settle when a download's bytes stop.
pub struct Charge {
    pub db: Db,
    pub audit: AuditLog,
    /// The owner's notification (feed and, by their choice, mail).
    pub notifier: Notifier,
    pub link: Link,
    pub grant: String,
    pub ticket: Ticket,
    pub peer: SocketAddr,
    /// Who downloaded, for the notification: the verified address or the IP.
    pub who: String,
    /// The address the visitor verified with a code, if the link asked for one:
    /// every download row of the link's trail names it.
    pub email: Option<String>,
    pub action: &'static str,
    /// The file (or "N files" for a zip), for the audit row and the mail.
    pub what: String,
    /// The request asked for everything up to the file's end: a completed one
    /// means the visitor now has the whole file.
    pub to_end: bool,
    /// The whole file's size, for the notification.
    pub file_size: u64,
    /// How often a download holding a reservation marks itself alive (see
    /// `crate::sweep`).
    pub alive_every: std::time::Duration,
    /// When the download began, for the duration in its event.
    pub started: std::time::Instant,
}

/// What a download is, for its audit row and notification.
pub struct Usage {
    pub action: &'static str,
    pub what: String,
    pub to_end: bool,
    pub file_size: u64,
}

/// Takes (or rides on) the visitor's use before the bytes flow. The charge to
/// settle when they stop, and the grant cookie to set if the grant is new; or the
/// answer when no use is left.
pub async fn begin(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    usage: Usage,
) -> Result<(Charge, Option<String>), Response<Body>> {
    let (grant, new_cookie) = v.grant_or_new(ctx);
    let (id, gid) = (v.link.id, grant.id.clone());
    let ticket = match ctx
        .db
        .run(move |s| s.link_begin_download(id, &gid, now_ms()))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "reserving a link use");
            return Err(page(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Try again in a moment.",
            ));
        }
    };
    if ticket == Ticket::Refused {
        return Err(refused(ctx, peer, &v.link, Status::Exhausted, false).await);
    }
    let charge = Charge {
        db: ctx.db.clone(),
        audit: ctx.audit.clone(),
        notifier: Notifier::new(ctx.db.clone(), ctx.mailer.clone(), &ctx.links()),
        link: v.link.clone(),
        grant: grant.id,
        ticket,
        peer,
        email: grant.email.clone(),
        who: grant.email.unwrap_or_else(|| peer.ip().to_string()),
        action: usage.action,
        what: usage.what,
        to_end: usage.to_end,
        file_size: usage.file_size,
        alive_every: crate::sweep::alive_period(ctx.links().reservation_timeout),
        started: std::time::Instant::now(),
    };
    Ok((charge, new_cookie))
}

impl Charge {
    /// Settles the use (charge or refund), writes the audit row and, for a whole
    /// file, notifies the creator. Runs on a task; never blocks the caller.
    pub fn settle(self, sent: u64, complete: bool) {
        self.finish(Some(sent), complete, "");
    }

    /// Settles a direct download (`http/direct.rs`) as complete when its
    /// presigned URL is handed out; the row says `direct` and counts no bytes,
    /// since they flow from storage to the visitor unseen.
    pub fn settle_direct(self) {
        self.finish(None, true, "; direct (presigned URL handed out)");
    }

    fn finish(self, sent: Option<u64>, complete: bool, note: &'static str) {
        let audit = self.audit.clone();
        audit.spawn(async move {
            let c = self;
            if matches!(c.ticket, Ticket::Reserved | Ticket::Shared) {
                let (id, grant) = (c.link.id, c.grant.clone());
                if let Err(e) =
                    c.db.run(move |s| s.link_end_download(id, &grant, complete))
                        .await
                {
                    tracing::error!(link = %c.link.public_id, error = %e, "settling a link use");
                }
            }
            let mut ev = AuditEvent::new(Protocol::Http, c.action)
                .remote(c.peer)
                .link(&c.link.public_id)
                .took(c.started);
            if let Some(sent) = sent {
                ev = ev.bytes(sent);
            }
            let ev = ev
                .outcome(if complete {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                })
                .detail(format!(
                    "{}{}{note}{}",
                    c.what,
                    if complete { "" } else { " (aborted)" },
                    c.email
                        .as_deref()
                        .map(|e| format!("; verified e-mail {e}"))
                        .unwrap_or_default()
                ));
            c.audit.record(ev).await;
            if complete && c.to_end {
                notify_owner(&c).await;
            }
        });
    }
}

/// Tells the owner a whole file was downloaded, and that the link is used up
/// if this download took its last use.
async fn notify_owner(c: &Charge) {
    // The link as it is now, after this download was charged.
    let pid = c.link.public_id.clone();
    let link = match c.db.run(move |s| s.link_by_public_id(&pid)).await {
        Ok(Some(l)) if l.id == c.link.id => l,
        _ => c.link.clone(),
    };
    c.notifier
        .emit(Event::Downloaded {
            link: &link,
            file: &c.what,
            bytes: c.file_size,
            who: &c.who,
        })
        .await;
    if c.ticket == Ticket::Reserved {
        c.notifier.if_exhausted(&link).await;
    }
}

/// A body stream that settles its [`Charge`] exactly once.
pub struct Metered {
    inner: ByteStream,
    sent: u64,
    /// Bytes the response promised; `None` for a streamed zip.
    expected: Option<u64>,
    charge: Option<Charge>,
    /// Marks the reservation alive on a timer while the download lasts, so
    /// the sweep of downloads that never settled leaves it alone even when the
    /// visitor reads slowly (hyper stops polling the body while the socket is
    /// full: marking only on polled chunks let a stalled download lose its use
    /// and then finish for free). Stopped when the download settles; it dies
    /// with the node, so a killed node's downloads still time out.
    keeper: Option<tokio::task::AbortHandle>,
}

impl Metered {
    pub fn new(inner: ByteStream, expected: Option<u64>, charge: Charge) -> Self {
        let keeper = matches!(charge.ticket, Ticket::Reserved | Ticket::Shared).then(|| {
            let (db, id, grant) = (charge.db.clone(), charge.link.id, charge.grant.clone());
            let every = charge.alive_every;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let g = grant.clone();
                    if let Err(e) = db
                        .run(move |s| s.link_touch_download(id, &g, now_ms()))
                        .await
                    {
                        tracing::warn!(error = %e, "marking a download alive");
                    }
                }
            })
            .abort_handle()
        });
        Metered {
            inner,
            sent: 0,
            expected,
            charge: Some(charge),
            keeper,
        }
    }

    fn settle(&mut self, complete: bool) {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        if let Some(c) = self.charge.take() {
            c.settle(self.sent, complete);
        }
    }
}

impl Stream for Metered {
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.sent += chunk.len() as u64;
                // hyper may stop polling once Content-Length bytes are out.
                if self.expected == Some(self.sent) {
                    self.settle(true);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e, "a link download failed while streaming");
                self.settle(false);
                // An error ends the response early: the visitor sees a broken
                // transfer, never a short file that looks complete.
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            Poll::Ready(None) => {
                let complete = self.expected.is_none_or(|n| n == self.sent);
                self.settle(complete);
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // Dropped before the end: the visitor went away or the server stops.
        self.settle(false);
    }
}
