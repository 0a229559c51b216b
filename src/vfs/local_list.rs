//! Directory listings on a local-disk (`fs`) connector, read by wharf instead of
//! OpenDAL.
//!
//! OpenDAL's fs lister asks the blocking pool for each entry's type and again for
//! its metadata, two round trips per name: a folder of 2,000 files cost 4,000
//! thread hand-offs before the first download began. Here one blocking task reads a
//! page of entries with their `lstat` results.
//!
//! The type comes from `lstat`, so a symlink is seen as one: only symlinks are
//! resolved, checked against the root (links leading out are left out of the
//! listing) and then described by what they point to. Other entries lie in a
//! directory already checked, so they need no check of their own.

use std::fs::{Metadata, ReadDir};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::on_blocking_pool as blocking;
use super::{guard, Entry, EntryKind, EntryStream, VPath};

/// Entries read per blocking task.
const PAGE: usize = 256;

/// Lists `dir_path` (the directory of virtual `dir`, already checked to lie inside
/// `root`) page by page, leaving out `hidden` names (mount points shadowing stored
/// names, the staging directory at the connector root).
pub(super) async fn list(
    root: PathBuf,
    dir_path: PathBuf,
    dir: VPath,
    hidden: Vec<String>,
) -> crate::Result<EntryStream> {
    let shown = dir.clone();
    let entries = blocking(move || std::fs::read_dir(dir_path))
        .await
        .map_err(|e| e.context(format!("list {shown}")))?;
    let listing = Arc::new(Listing { root, dir, hidden });
    let pages = stream::try_unfold(Some(entries), move |entries| {
        let listing = listing.clone();
        async move {
            let Some(entries) = entries else {
                return Ok::<_, crate::Error>(None);
            };
            let shown = listing.dir.clone();
            let (page, rest) = blocking(move || listing.read_page(entries))
                .await
                .map_err(|e| e.context(format!("list {shown}")))?;
            Ok(Some((stream::iter(page.into_iter().map(Ok)), rest)))
        }
    });
    Ok(pages.try_flatten().boxed())
}

/// One listing in progress: what its pages are read against.
struct Listing {
    root: PathBuf,
    dir: VPath,
    hidden: Vec<String>,
}

impl Listing {
    /// Reads up to [`PAGE`] entries; the directory handle comes back unless the
    /// listing is complete.
    fn read_page(&self, mut entries: ReadDir) -> std::io::Result<(Vec<Entry>, Option<ReadDir>)> {
        let dir = &self.dir;
        let mut page = Vec::new();
        while page.len() < PAGE {
            let Some(entry) = entries.next() else {
                return Ok((page, None));
            };
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(dir = %dir, "skipping a stored name that is not UTF-8");
                continue;
            };
            if self.hidden.contains(&name) {
                continue;
            }
            let Ok(path) = dir.join(&name) else {
                tracing::warn!(dir = %dir, name, "skipping a stored name that is not a valid path");
                continue;
            };
            // Gone since readdir, or a link out of the root or to nothing: left out.
            let Some(meta) = entry
                .metadata()
                .ok()
                .and_then(|m| describe(&self.root, &entry.path(), m))
            else {
                continue;
            };
            let kind = if meta.is_dir() {
                EntryKind::Dir
            } else if meta.is_file() {
                EntryKind::File
            } else {
                continue;
            };
            page.push(Entry {
                path,
                kind,
                size: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
                modified: meta.modified().ok(),
                mode: Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777),
            });
        }
        Ok((page, Some(entries)))
    }
}

/// What listed `path` is, from its `lstat` result: followed only if it is a
/// symlink that stays inside `root`.
fn describe(root: &Path, path: &Path, meta: Metadata) -> Option<Metadata> {
    if !meta.file_type().is_symlink() {
        return Some(meta);
    }
    let key = path.strip_prefix(root).ok()?.to_str()?;
    guard::check_inside(root, key).ok()?;
    std::fs::metadata(path).ok()
}
