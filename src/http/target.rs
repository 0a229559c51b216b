//! Where a link item's bytes live. A send item is its copy in the transfer store.
//! A share item is re-checked at every access: its creator must still exist, be
//! enabled, hold `read` (and `list` to browse a folder), and the path must still
//! be inside their home. Inside a shared folder, URL segments are taken one by
//! one: `..`, `.`, empty and separator-bearing segments are refused, and the
//! result must still lie below the shared folder, segment by segment
//! (`/a/share` never reaches `/a/share2`). The storage is reached through a Vfs
//! jailed to the creator's home and, for a folder, to the folder itself, so on
//! fs a symlink leading out of it is refused like a `..`.

use std::sync::Arc;

use crate::policy::Op;
use crate::store::{Link, LinkFile, LinkKind};
use crate::vfs::{VPath, Vfs};

use super::HttpContext;

/// A resolved item (or a path inside a shared folder).
pub struct Target {
    pub vfs: Arc<Vfs>,
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

pub async fn resolve(
    ctx: &HttpContext,
    link: &Link,
    file: &LinkFile,
    rest: &[&str],
    op: Op,
) -> Result<Target, Refusal> {
    let inner = inner_segments(rest).ok_or(Refusal::NotFound)?;
    let root = VPath::parse(&file.path).map_err(|_| Refusal::Gone("stored path is invalid"))?;
    if !inner.is_empty() && !file.is_dir {
        return Err(Refusal::NotFound);
    }
    let vfs = match link.kind {
        LinkKind::Send => ctx.transfers.clone(),
        LinkKind::Share => {
            let home = ctx
                .service
                .creator_allows(link, &root, &[Op::Read, op])
                .await
                .map_err(Refusal::Gone)?;
            // Jailed to the creator's home, and a shared folder to itself: on fs
            // no symlink inside leads anywhere else.
            let vfs = ctx.vfs.jailed(&home);
            Arc::new(if file.is_dir { vfs.jailed(&root) } else { vfs })
        }
        // What outside parties upload is for the creator, not for other visitors.
        LinkKind::Request => return Err(Refusal::NotFound),
    };
    let mut path = root.clone();
    for seg in &inner {
        path = path.join(seg).map_err(|_| Refusal::NotFound)?;
    }
    if !path.starts_with(&root) {
        return Err(Refusal::NotFound);
    }
    Ok(Target {
        vfs,
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
