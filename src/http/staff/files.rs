//! `GET /app/links/{id}/files/{file}`: a staff member downloads a file of their
//! link themselves, from its page. The bytes come through a `Session` of the
//! staff member (their permissions, their audit rows): a send link's copy is
//! reached in the transfer store with the link's folder as the session's home; a
//! shared file must lie inside the staff member's own home. Nothing is charged
//! to the link's usage limit. Each download is audited twice: `download` (the
//! session's row with the bytes sent) and `link_staff_download` on the link's
//! trail.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::super::download::disposition;
use super::super::respond::page;
use super::super::{Body, HttpContext};
use super::session::Staff;
use super::views::own_link;
use super::{failed, not_found};
use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::policy::Protocol;
use crate::session::{Download, Session};
use crate::store::LinkKind;
use crate::vfs::{ByteStream, VPath};

/// `GET /app/links/{public_id}/files/{file_id}`.
pub async fn download(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    public_id: &str,
    file_id: &str,
) -> Response<Body> {
    let Some(link) = own_link(ctx, staff, public_id).await else {
        return not_found(ctx);
    };
    let Ok(file_id) = file_id.parse::<i64>() else {
        return not_found(ctx);
    };
    let files = match ctx.service.files(&link).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "reading link files");
            return failed(ctx);
        }
    };
    let Some(file) = files.into_iter().find(|f| f.id == file_id && !f.is_dir) else {
        return not_found(ctx);
    };
    let Ok(stored) = VPath::parse(&file.path) else {
        return not_found(ctx);
    };
    let mut user = staff.user.clone();
    let (storage, view) = match link.kind {
        LinkKind::Send => {
            let Ok(dir) = VPath::root().join(&link.public_id) else {
                return not_found(ctx);
            };
            user.home = dir;
            (ctx.transfers.clone(), stored.relative_to(&user.home))
        }
        LinkKind::Share => (ctx.vfs.clone(), stored.relative_to(&user.home)),
        LinkKind::Request => return not_found(ctx),
    };
    let Some(view) = view else {
        // A share of another user's home, opened by an administrator.
        return page(
            ctx,
            StatusCode::FORBIDDEN,
            "Not yours to read",
            "This file is outside your home: only its owner can download it here.",
        );
    };
    let session = Session::new(user, Protocol::Http, Some(peer), storage, ctx.audit.clone());
    let dl = match session.open_read(&view).await {
        Ok(d) => d,
        Err(e) => {
            let why = crate::reply::text(&e).to_string();
            record(
                ctx,
                peer,
                staff,
                &link.public_id,
                &file.name,
                Outcome::Denied,
                &why,
            )
            .await;
            return page(ctx, StatusCode::NOT_FOUND, "Not available", &why);
        }
    };
    let size = dl.size();
    let stream = match dl.stream(0..size).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "opening a link file for staff");
            dl.finish(false).await;
            return failed(ctx);
        }
    };
    record(
        ctx,
        peer,
        staff,
        &link.public_id,
        &file.name,
        Outcome::Ok,
        "",
    )
    .await;
    // An empty file has no chunk to settle it on.
    let dl = if size == 0 {
        dl.finish(true).await;
        None
    } else {
        Some(dl)
    };
    let body = StreamBody::new(Counted {
        audit: ctx.audit.clone(),
        inner: stream,
        download: dl,
        sent: 0,
        size,
    })
    .boxed_unsync();
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(d) = HeaderValue::from_str(&disposition(&file.name)) {
        h.insert(CONTENT_DISPOSITION, d);
    }
    resp
}

async fn record(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    public_id: &str,
    name: &str,
    outcome: Outcome,
    why: &str,
) {
    let mut detail = name.to_string();
    if !why.is_empty() {
        detail = format!("{detail}: {why}");
    }
    let ev = AuditEvent::new(Protocol::Http, "link_staff_download")
        .remote(peer)
        .actor(staff.user.name.clone())
        .link(public_id)
        .outcome(outcome)
        .detail(detail);
    ctx.audit.record(ev).await;
}

/// The file's bytes, counted into the session's download, which is finished
/// (and audited) when the last byte went out; a client that goes away leaves
/// it to the download's drop, which records it as interrupted.
struct Counted {
    /// Finishing runs on a task the audit log waits for at shutdown.
    audit: AuditLog,
    inner: ByteStream,
    download: Option<Download>,
    sent: u64,
    size: u64,
}

impl Stream for Counted {
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.sent += chunk.len() as u64;
                if let Some(d) = &self.download {
                    d.add_sent(chunk.len() as u64);
                }
                // hyper stops polling once Content-Length bytes went out: the
                // last chunk settles the download.
                if self.sent >= self.size {
                    if let Some(d) = self.download.take() {
                        self.audit.spawn(d.finish(true));
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e, "a staff download failed while streaming");
                if let Some(d) = self.download.take() {
                    self.audit.spawn(d.finish(false));
                }
                Poll::Ready(Some(Err(std::io::Error::other(
                    "the file could not be read",
                ))))
            }
            Poll::Ready(None) => {
                if let Some(d) = self.download.take() {
                    let complete = self.sent == self.size;
                    self.audit.spawn(d.finish(complete));
                }
                Poll::Ready(None)
            }
        }
    }
}
