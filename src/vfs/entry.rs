//! [`Entry`]: what a stat or a directory listing says about one name.

use std::time::SystemTime;
use wharf_connectors::opendal;

use super::VPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: VPath,
    pub kind: EntryKind,
    /// Bytes for a file; 0 for a directory.
    pub size: u64,
    /// Last modification, when the storage service reports one.
    pub modified: Option<SystemTime>,
    /// Permission bits (`0o7777` and less), where storage keeps them (fs).
    pub mode: Option<u32>,
    /// Set when the name itself is a symlink (fs listings and LSTAT): its text,
    /// as the viewer may see it (relative as stored; an absolute one as a
    /// virtual path). `kind`, `size` and `mode` describe what it leads to, so
    /// every door that follows links (downloads, zips, STAT) reads them as before.
    pub link: Option<String>,
    /// The storage's entity tag, where the service reports one (object stores).
    pub etag: Option<String>,
}

impl Entry {
    pub fn dir(path: VPath) -> Self {
        Entry {
            path,
            kind: EntryKind::Dir,
            size: 0,
            modified: None,
            mode: None,
            link: None,
            etag: None,
        }
    }

    pub fn from_metadata(path: VPath, meta: &opendal::Metadata) -> Option<Self> {
        let kind = if meta.is_dir() {
            EntryKind::Dir
        } else if meta.is_file() {
            EntryKind::File
        } else {
            return None;
        };
        Some(Entry {
            path,
            kind,
            size: if kind == EntryKind::File {
                meta.content_length()
            } else {
                0
            },
            modified: meta.last_modified().map(SystemTime::from),
            mode: None,
            link: None,
            etag: meta.etag().map(str::to_string),
        })
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    pub fn name(&self) -> &str {
        self.path.file_name().unwrap_or("/")
    }
}
