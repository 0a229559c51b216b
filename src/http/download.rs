//! `GET /l/<token>/f/<id>[/<path inside a shared folder>]`: a file, streamed
//! from storage with single-range support (206, 416), or a folder page.
//! `HEAD` answers the same headers and uses nothing; a `GET` takes or rides on
//! its grant's use before the bytes flow (docs/links.md). Validators and
//! conditional requests (304, `If-Range`): `conditional.rs`.

use std::net::SocketAddr;
use std::ops::Range;

use futures::TryStreamExt;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, RANGE,
};
use hyper::{Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::conditional::{self, Precondition, Validators};
use super::direct;
use super::meter::{begin, Metered, Usage};
use super::pages::{self, FolderRow};
use super::respond::{audit, brand, html, not_found, page, redirect, refused, try_again, SEGMENT};
use super::sendfile::{Outlet, MIN_LEN};
use super::target::{self, Refusal, Target};
use super::visit::{self, Visit};
use super::{Body, HttpContext};
use crate::audit::Outcome;
use crate::policy::links::Gate;
use crate::policy::Op;
use crate::store::LinkFile;
use crate::vfs::Entry;

/// Most entries a folder page shows.
const MAX_LISTING: usize = 2_000;

/// RFC 8187 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    Full,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range; anything else (several ranges, other units, nonsense) is
/// answered with the whole file, as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(size.saturating_sub(n)..size)
            }
        }
        (false, Some(start), end) if b.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|e| e < start) {
                return Ranged::Full;
            }
            if start >= size {
                return Ranged::Unsatisfiable;
            }
            let stop = end.map_or(size, |e| e.saturating_add(1).min(size));
            Ranged::Part(start..stop)
        }
        _ => Ranged::Full,
    }
}

/// `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266).
pub fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' ' => ' ',
            '"' | '\\' | '%' => '_',
            c if c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    )
}

/// The 410 page of a share that stopped working, audited with the reason.
pub async fn unavailable(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    why: &str,
) -> Response<Body> {
    let said = "This item is no longer available. Ask the sender to share it again.";
    gone(ctx, peer, v, why, said).await
}

/// The 410 page of a link that stopped working, saying `said`; the reason
/// `why` is audited (`link_unavailable`, denied), never shown.
pub async fn gone(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    why: &str,
    said: &str,
) -> Response<Body> {
    audit(
        ctx,
        peer,
        &v.link,
        "link_unavailable",
        Outcome::Denied,
        Some(why.into()),
    )
    .await;
    page(ctx, StatusCode::GONE, "No longer available", said)
}

/// The visit, if its gate is open; otherwise the answer (ended page or the
/// landing page's form).
pub async fn open_visit(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Visit, Response<Body>> {
    let v = visit::visit(ctx, token, headers).await?;
    match v.gate {
        Gate::Open => Ok(v),
        Gate::Closed(status) => Err(refused(ctx, peer, &v.link, status, head).await),
        Gate::Password | Gate::Email => Err(redirect(&v.base())),
    }
}

/// `outlet`: the connection's kernel copy, on plain HTTP (`sendfile.rs`).
pub async fn item(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    rest: &[&str],
    headers: &HeaderMap,
    head: bool,
    outlet: Option<&Outlet>,
) -> Response<Body> {
    let v = match open_visit(ctx, peer, token, headers, head).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let file = match find_file(ctx, &v, rest.first().copied()).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found(ctx),
        Err(r) => return r,
    };
    let t = match target::resolve(ctx, &v.link, &file, &rest[1..], &[Op::Read], peer).await {
        Ok(t) => t,
        Err(Refusal::NotFound) => return not_found(ctx),
        Err(Refusal::Gone(why)) => return unavailable(ctx, peer, &v, why).await,
    };
    let entry = match t.session.stat_for(Op::Read, &t.path).await {
        Ok(e) => e,
        Err(e) if e.kind() == crate::error::ErrorKind::NotFound && t.inner.is_empty() => {
            return unavailable(ctx, peer, &v, "the file was removed").await
        }
        Err(e) if e.kind() == crate::error::ErrorKind::NotFound => return not_found(ctx),
        Err(e) if e.kind() == crate::error::ErrorKind::PermissionDenied => {
            return outside(ctx, peer, &v, &t).await
        }
        Err(e) => return try_again(ctx, &e),
    };
    if entry.is_dir() {
        if !file.is_dir {
            return not_found(ctx);
        }
        return folder(ctx, peer, &v, &file, rest, head).await;
    }
    let name = t.inner.last().cloned().unwrap_or_else(|| file.name.clone());
    send_file(ctx, peer, &v, t, &name, &entry, (headers, head), outlet).await
}

/// The link's file named by `id`; a store failure is a "try again" page.
async fn find_file(
    ctx: &HttpContext,
    v: &Visit,
    id: Option<&str>,
) -> Result<Option<LinkFile>, Response<Body>> {
    let Some(id) = id.and_then(|i| i.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let link_id = v.link.id;
    let files = ctx
        .db
        .run(move |s| s.link_files(link_id))
        .await
        .map_err(|e| try_again(ctx, &e))?;
    Ok(files.into_iter().find(|f| f.id == id))
}

#[allow(clippy::too_many_arguments)]
async fn send_file(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    t: Target,
    name: &str,
    entry: &Entry,
    (headers, head): (&HeaderMap, bool),
    outlet: Option<&Outlet>,
) -> Response<Body> {
    let size = entry.size;
    let validators = Validators::of(entry);
    // A 304 is answered before the use is taken: no use, no audit row.
    let range_allowed = match conditional::evaluate(headers, &validators) {
        Precondition::NotModified => {
            let mut r = empty(StatusCode::NOT_MODIFIED);
            validators.apply(r.headers_mut());
            return r;
        }
        Precondition::Send { range_allowed } => range_allowed,
    };
    let asked = headers.get(RANGE).and_then(|h| h.to_str().ok());
    let ranged = if range_allowed {
        parse_range(asked, size)
    } else {
        Ranged::Full
    };
    let (status, range) = match ranged {
        Ranged::Full => (StatusCode::OK, 0..size),
        Ranged::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Ranged::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            set(r.headers_mut(), CONTENT_RANGE, &format!("bytes */{size}"));
            return r;
        }
    };
    let len = range.end - range.start;
    let mut resp = empty(status);
    {
        let h = resp.headers_mut();
        set(h, CONTENT_TYPE, "application/octet-stream");
        set(h, CONTENT_DISPOSITION, &disposition(name));
        set(h, ACCEPT_RANGES, "bytes");
        set(h, CONTENT_LENGTH, &len.to_string());
        validators.apply(h);
        if status == StatusCode::PARTIAL_CONTENT {
            set(
                h,
                CONTENT_RANGE,
                &format!(
                    "bytes {}-{}/{size}",
                    range.start,
                    range.end.saturating_sub(1)
                ),
            );
        }
    }
    if head {
        return resp;
    }
    // Presigning is local (no request): a URL nobody is given costs nothing.
    let direct = direct::presigned(&t, &disposition(name)).await;
    let what = Usage {
        action: "link_download",
        what: display_path(&t),
        to_end: direct.is_some() || range.end == size,
        file_size: size,
    };
    let (charge, new_cookie) = match begin(ctx, peer, v, what).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(url) = direct {
        charge.settle_direct();
        let mut resp = redirect(&url);
        if let Some(c) = new_cookie {
            v.set_grant(ctx, resp.headers_mut(), &c);
        }
        return resp;
    }
    let stream = match t.session.open_read(&t.path).await {
        // A local file on plain HTTP: the kernel sends it (`sendfile.rs`).
        Ok(download) => match (outlet, download.local_file()) {
            (Some(o), Some(file)) if len >= MIN_LEN => Ok(o.body(file, range, download.size())),
            _ => download.stream(range).await,
        },
        Err(e) => Err(e),
    };
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "opening a link item");
            charge.settle(0, false);
            return page(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The file could not be read. Try again in a moment.",
            );
        }
    };
    let body = StreamBody::new(Metered::new(stream, Some(len), charge)).boxed_unsync();
    let (parts, _) = resp.into_parts();
    let mut resp = Response::from_parts(parts, body);
    if let Some(c) = new_cookie {
        v.set_grant(ctx, resp.headers_mut(), &c);
    }
    resp
}

/// A path that leads out of the share (a symlink on disk): audited as denied,
/// answered like a missing file.
async fn outside(ctx: &HttpContext, peer: SocketAddr, v: &Visit, t: &Target) -> Response<Body> {
    audit(
        ctx,
        peer,
        &v.link,
        "link_download",
        Outcome::Denied,
        Some(format!(
            "{}: leads outside the shared item",
            display_path(t)
        )),
    )
    .await;
    not_found(ctx)
}

/// The item and the path inside it, for audit rows and mails.
fn display_path(t: &Target) -> String {
    let base = t.root.file_name().unwrap_or("").to_string();
    if t.inner.is_empty() {
        base
    } else {
        format!("{base}/{}", t.inner.join("/"))
    }
}

async fn folder(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    file: &LinkFile,
    rest: &[&str],
    head: bool,
) -> Response<Body> {
    // Browsing needs `list` as well as `read` from the creator.
    let ops = [Op::Read, Op::List];
    let t = match target::resolve(ctx, &v.link, file, &rest[1..], &ops, peer).await {
        Ok(t) => t,
        Err(Refusal::NotFound) => return not_found(ctx),
        Err(Refusal::Gone(why)) => return unavailable(ctx, peer, v, why).await,
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    match t.session.list(&t.path).await {
        Ok(mut list) => loop {
            match list.try_next().await {
                Ok(Some(e)) if entries.len() < MAX_LISTING => entries.push(e),
                Ok(Some(_)) => {
                    truncated = true;
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "listing a shared folder");
                    return page(
                        ctx,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Try again",
                        "The folder could not be read.",
                    );
                }
            }
        },
        Err(e) if e.kind() == crate::error::ErrorKind::PermissionDenied => {
            return outside(ctx, peer, v, &t).await
        }
        Err(e) => {
            tracing::error!(error = %e, "listing a shared folder");
            return page(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The folder could not be read.",
            );
        }
    }
    entries.sort_by(|a, b| {
        b.is_dir()
            .cmp(&a.is_dir())
            .then_with(|| a.path.file_name().cmp(&b.path.file_name()))
    });
    let here: String = t
        .inner
        .iter()
        .map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT)))
        .collect();
    let base = format!("{}/f/{}{here}", v.base(), file.id);
    let rows: Vec<FolderRow> = entries
        .iter()
        .filter_map(|e| {
            let name = e.path.file_name()?.to_string();
            Some(FolderRow {
                href: format!("{base}/{}", utf8_percent_encode(&name, SEGMENT)),
                name,
                is_dir: e.is_dir(),
                size: e.size,
            })
        })
        .collect();
    let up = if t.inner.is_empty() {
        v.base()
    } else {
        let parent: String = t.inner[..t.inner.len() - 1]
            .iter()
            .map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT)))
            .collect();
        format!("{}/f/{}{parent}", v.base(), file.id)
    };
    if !head {
        audit(
            ctx,
            peer,
            &v.link,
            "link_browse",
            Outcome::Ok,
            Some(display_path(&t)),
        )
        .await;
    }
    let shown = format!("{}/{}", file.name, t.inner.join("/"));
    html(
        StatusCode::OK,
        pages::folder(&brand(ctx), &v.link, &shown, Some(&up), &rows, truncated),
    )
}

fn set(h: &mut HeaderMap, k: hyper::header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(k, v);
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ranged::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ranged::Part(0..5));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ranged::Part(5..10));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ranged::Part(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ranged::Part(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ranged::Part(0..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Ranged::Full);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ranged::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Ranged::Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Ranged::Full);
    }

    #[test]
    fn dispositions_keep_utf8_names_and_stay_safe() {
        assert_eq!(
            disposition("Bericht Größe \"1\".pdf"),
            "attachment; filename=\"Bericht Gr__e _1_.pdf\"; filename*=UTF-8''Bericht%20Gr%C3%B6%C3%9Fe%20%221%22.pdf"
        );
        assert!(!disposition("a\r\nb").contains('\n'));
    }
}
