//! Where a link item's bytes live, and who reaches them: the Session that acts
//! for the link. A send item is its copy in the transfer store, reached by the
//! system's session. A share item is reached by a session acting for its
//! creator as they are now ([`crate::session::Session::for_link`]): they must
//! still exist and be enabled, the item must still be inside their home, and
//! their permissions are the session's to check (`read`, and `list` to browse
//! a folder). Inside a shared folder, URL segments are taken one by one: `..`,
//! `.`, empty and separator-bearing segments are refused, and the result must
//! still lie below the shared folder, segment by segment (`/a/share` never
//! reaches `/a/share2`). A shared folder's session is confined to the folder,
//! so on fs a symlink leading out of it is refused like a `..`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::policy::Op;
use crate::session::Session;
use crate::store::{Link, LinkFile, LinkKind};
use crate::vfs::VPath;

use super::HttpContext;

/// A resolved item (or a path inside a shared folder). Paths are in the
/// view of the session's user (the creator's home is their `/`).
pub struct Target {
    pub session: Arc<Session>,
    pub path: VPath,
    /// The item's root: the shared folder, or the file itself.
    pub root: VPath,
    /// The path below the item, as the visitor sees it ("" at the item).
    pub inner: Vec<String>,
}

/// Why an item cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The visitor asked for something that is not there (404).
    NotFound,
    /// The share no longer works (410, "no longer available"); the reason is
    /// audited, never shown.
    Gone(&'static str),
}

/// Decodes the URL segments below an item; `None` if any is not a plain name.
pub fn inner_segments(rest: &[&str]) -> Option<Vec<String>> {
    rest.iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let d = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
            crate::vfs::is_plain_name(&d).then(|| d.into_owned())
        })
        .collect()
}

/// Whether the link's creator, as they are now, may still do `op` at all
/// (the landing page of a share or an upload request): `Err` says why not,
/// for the audit row.
pub async fn creator_may(
    ctx: &HttpContext,
    link: &Link,
    op: Op,
    peer: SocketAddr,
) -> Result<(), &'static str> {
    let session = ctx.service.creator_session(link, None, Some(peer)).await?;
    session
        .allows(op)
        .map_err(|_| "creator lost a permission it needs")
}

/// The item `file` of `link` (and `rest` below it), for a visitor at `peer`
/// who is about to do `ops` on it: a creator who lost a permission `ops`
/// needs makes the link stop working (`Gone`).
pub async fn resolve(
    ctx: &HttpContext,
    link: &Link,
    file: &LinkFile,
    rest: &[&str],
    ops: &[Op],
    peer: SocketAddr,
) -> Result<Target, Refusal> {
    let inner = inner_segments(rest).ok_or(Refusal::NotFound)?;
    let full = VPath::parse(&file.path).map_err(|_| Refusal::Gone("stored path is invalid"))?;
    if !inner.is_empty() && !file.is_dir {
        return Err(Refusal::NotFound);
    }
    let session = match link.kind {
        LinkKind::Send => ctx.service.transfer_session(),
        LinkKind::Share => {
            let within = file.is_dir.then_some(&full);
            ctx.service
                .creator_session(link, within, Some(peer))
                .await
                .map_err(Refusal::Gone)?
        }
        // What outside parties upload is for the creator, not for other visitors.
        LinkKind::Request => return Err(Refusal::NotFound),
    };
    if ops.iter().any(|op| session.allows(*op).is_err()) {
        return Err(Refusal::Gone("creator lost a permission it needs"));
    }
    let root = session
        .view(&full)
        .ok_or(Refusal::Gone("outside the creator's home"))?;
    let mut path = root.clone();
    for seg in &inner {
        path = path.join(seg).map_err(|_| Refusal::NotFound)?;
    }
    if !path.starts_with(&root) {
        return Err(Refusal::NotFound);
    }
    Ok(Target {
        session: Arc::new(session),
        path,
        root,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_pass() {
        assert_eq!(inner_segments(&["a", "b%20c"]).unwrap(), ["a", "b c"]);
        assert_eq!(inner_segments(&["a", ""]).unwrap(), ["a"]);
        for bad in [
            &[".."][..],
            &["%2e%2e"],
            &["a", "."],
            &["a%2fb"],
            &["a%5cb"],
            &["%00"],
            &["%ff"],
        ] {
            assert!(inner_segments(bad).is_none(), "{bad:?}");
        }
    }
}
