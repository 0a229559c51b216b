//! `GET /l/<token>/zip`: every item of the link as one zip, streamed as it is
//! written (stored entries with data descriptors, zip64 when needed), so no file
//! or archive is ever held in memory or on disk. Shared folders are walked, up
//! to [`MAX_ENTRIES`] files. The zip is one download under the grant.
//!
//! Each entry carries Unix mode 0644 (a regular file anyone may read: without it
//! `unzip` restores mode 000) and the file's modification time, written in UTC
//! (a server does not know the visitor's zone; MS-DOS time has 2 s steps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTime, ZipDateTimeBuilder, ZipEntryBuilder};
use futures::{AsyncWriteExt, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::download::{disposition, open_visit, unavailable};
use super::meter::{begin, Metered, Usage};
use super::respond::{not_found, page};
use super::target::{self, Refusal};
use super::{Body, HttpContext};
use crate::error::{Error, Result};
use crate::policy::Op;
use crate::session::Session;
use crate::vfs::VPath;

pub const MAX_ENTRIES: usize = 10_000;

struct Item {
    name: String,
    /// The session acting for the link; `path` is in its user's view.
    session: Arc<Session>,
    path: VPath,
    /// Last modification, when the storage reports one.
    modified: Option<SystemTime>,
}

/// A regular file, read-write for its owner and readable by everyone.
const ENTRY_MODE: u16 = 0o100644;

pub async fn all(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let v = match open_visit(ctx, peer, token, headers, head).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = v.link.id;
    let files = ctx
        .db
        .run(move |s| s.link_files(id))
        .await
        .unwrap_or_default();
    if files.is_empty() {
        return not_found(ctx);
    }
    let mut items = Vec::new();
    for f in &files {
        let ops: &[Op] = if f.is_dir {
            &[Op::Read, Op::List]
        } else {
            &[Op::Read]
        };
        let t = match target::resolve(ctx, &v.link, f, &[], ops, peer).await {
            Ok(t) => t,
            Err(Refusal::NotFound) => return not_found(ctx),
            Err(Refusal::Gone(why)) => return unavailable(ctx, peer, &v, why).await,
        };
        if f.is_dir {
            if let Err(e) = walk(&t.session, &t.path, &f.name, &mut items).await {
                if e.kind() == crate::error::ErrorKind::InvalidInput {
                    return page(
                        ctx,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Too many files",
                        crate::reply::text(&e),
                    );
                }
                if e.kind() != crate::error::ErrorKind::NotFound {
                    // Storage that does not answer is not a link that has ended.
                    crate::reply::log("link", &e);
                    return page(
                        ctx,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Try again later",
                        "The files cannot be read right now. Please try again in a few minutes.",
                    );
                }
                return unavailable(ctx, peer, &v, "a shared folder could not be read").await;
            }
        } else {
            let modified = match t.session.stat_for(Op::Read, &t.path).await {
                Ok(e) => e.modified,
                Err(_) => None,
            };
            items.push(Item {
                name: f.name.clone(),
                session: t.session,
                path: t.path,
                modified,
            });
        }
    }
    let title = if v.link.title.is_empty() {
        "files"
    } else {
        v.link.title.as_str()
    };
    let mut resp = Response::new(
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(d) = HeaderValue::from_str(&disposition(&format!("{title}.zip"))) {
        resp.headers_mut().insert(CONTENT_DISPOSITION, d);
    }
    if head {
        return resp;
    }
    let count = items.len();
    let what = Usage {
        action: "link_zip",
        what: format!("{count} file(s) as {title}.zip"),
        to_end: true,
        file_size: 0,
    };
    let (charge, new_cookie) = match begin(ctx, peer, &v, what).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    ctx.audit.spawn(async move {
        let res = write_zip(writer, items).await;
        if let Err(e) = &res {
            tracing::warn!(error = %e, "writing a link zip");
        }
        let _ = done_tx.send(res);
    });
    // The archive's bytes, then a check that the writer finished: a failed
    // writer turns into a broken response, never a truncated zip that looks whole.
    let bytes = tokio_util::io::ReaderStream::new(reader).map_err(Error::from);
    let verdict = futures::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(e)),
            Err(_) => Some(Err(Error::internal("the zip writer stopped"))),
        }
    })
    .filter_map(|x| async move { x });
    let stream = bytes.chain(verdict).boxed();
    let (parts, _) = resp.into_parts();
    let mut resp = Response::from_parts(
        parts,
        StreamBody::new(Metered::new(stream, None, charge)).boxed_unsync(),
    );
    if let Some(c) = new_cookie {
        v.set_grant(ctx, resp.headers_mut(), &c);
    }
    resp
}

/// Collects the files below `dir`, named `prefix/...`, breadth first.
async fn walk(
    session: &Arc<Session>,
    dir: &VPath,
    prefix: &str,
    items: &mut Vec<Item>,
) -> Result<()> {
    let mut queue = vec![(dir.clone(), prefix.to_string())];
    while let Some((d, name)) = queue.pop() {
        let mut list = session.list(&d).await?;
        while let Some(e) = list.try_next().await? {
            let Some(leaf) = e.path.file_name() else {
                continue;
            };
            let inner = format!("{name}/{leaf}");
            if e.is_dir() {
                queue.push((e.path.clone(), inner));
            } else {
                if items.len() >= MAX_ENTRIES {
                    return Err(Error::invalid(format!(
                        "This share holds more than {MAX_ENTRIES} files: download them one by one or by folder."
                    )));
                }
                items.push(Item {
                    name: inner,
                    session: session.clone(),
                    path: e.path.clone(),
                    modified: e.modified,
                });
            }
        }
    }
    Ok(())
}

async fn write_zip(out: tokio::io::DuplexStream, items: Vec<Item>) -> Result<()> {
    let zip_err = |e: async_zip::error::ZipError| Error::internal(format!("zip: {e}"));
    let mut zip = ZipFileWriter::with_tokio(out);
    for item in items {
        let reader = item.session.open_read(&item.path).await?;
        let mut chunks = reader.stream(0..reader.size()).await?;
        let mut entry = ZipEntryBuilder::new(item.name.into(), Compression::Stored)
            .unix_permissions(ENTRY_MODE);
        if let Some(date) = item.modified.and_then(dos_time) {
            entry = entry.last_modification_date(date);
        }
        let mut w = zip.write_entry_stream(entry).await.map_err(zip_err)?;
        while let Some(chunk) = chunks.try_next().await? {
            w.write_all(&chunk).await?;
        }
        w.close().await.map_err(zip_err)?;
    }
    zip.close().await.map_err(zip_err)?;
    Ok(())
}

/// `t` in UTC as an MS-DOS date and time, which only holds 1980 to 2107.
fn dos_time(t: SystemTime) -> Option<ZipDateTime> {
    // RFC 3339 spells out the civil date: `YYYY-MM-DDTHH:MM:SSZ`.
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let year = n(0..4)?;
    if !(1980..=2107).contains(&year) {
        return None;
    }
    Some(
        ZipDateTimeBuilder::new()
            .year(year as i32)
            .month(n(5..7)?)
            .day(n(8..10)?)
            .hour(n(11..13)?)
            .minute(n(14..16)?)
            .second(n(17..19)?)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_are_utc_civil_dates_in_range() {
        // 2026-11-29T06:30:42Z
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_933_842);
        let d = dos_time(t).unwrap();
        assert_eq!(
            (
                d.year(),
                d.month(),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            ),
            (2026, 11, 29, 6, 30, 42)
        );
        assert!(dos_time(std::time::UNIX_EPOCH).is_none(), "before 1980");
    }
}
