//! The virtual filesystem: one tree of [`VPath`]s over all mounted connectors.
//!
//! Operations have POSIX-like meaning whatever the service underneath: a file must
//! exist to be deleted, `mkdir` needs its parent, `rmdir` needs an empty directory,
//! a rename works across services (native where possible, copy-then-delete where
//! not), and uploads appear only when complete.
//!
//! A Vfs may be jailed ([`Vfs::jailed`]): it then serves only paths inside its
//! jails, and on fs every resolution stays inside each jail's real directory
//! (symlinks leading out are refused), see `guard`.

use wharf_connectors::opendal;
mod direct_azure;
mod direct_gcs;
mod direct_shared;
mod entry;
mod guard;
mod io;
mod local_attrs;
mod local_fsinfo;
mod local_links;
mod local_list;
mod local_ops;
mod local_read;
mod local_write;
mod mount;
mod multipart_direct;
mod parts;
mod path;
mod presign;
mod sigv4;
mod times;

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use wharf_connectors::{Connector, PARTIAL_DIR};

pub use entry::{Entry, EntryKind};
pub use io::{FileReader, FileWriter};

/// A stream of file bytes, in chunks of at most the Vfs buffer size.
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes>>;
use io::{Source, Upload};
pub use local_attrs::SetAttrs;
pub use local_fsinfo::FsStats;
use local_read::LocalReader;
use local_write::LocalWriter;
pub use mount::{Mount, MountTable, Resolved};
pub use multipart_direct::{
    part_count, part_len, part_size, DirectPlace, DonePart, PART_URL_LIFETIME,
};
pub use parts::{PartSchedule, DOUBLE_EVERY, PART_CAP};
pub use path::{is_plain_name, VPath, MAX_NAME, MAX_PATH};
pub use times::{KeptTime, TimeBook};

use crate::budget::Budget;
use crate::error::{Error, ErrorKind, Result};

/// Default size of one read or write chunk: the memory one transfer holds.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// Largest upload to a network service that takes a file only in one request
/// (WebDAV: one PUT, `write_can_multi` false): OpenDAL holds the whole file in
/// memory until close, so the size is capped rather than unbounded, and what it
/// holds is drawn from the memory budget as it grows (`FileWriter::write`).
pub const ONE_SHOT_MAX: usize = 64 * 1024 * 1024;

/// Multipart upload parts sent concurrently to a network service.
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;

pub struct Vfs {
    table: Arc<MountTable>,
    buffer_size: usize,
    /// Shared by every upload's buffers (see `crate::budget`).
    budget: Budget,
    /// Folders every path must lie in, outer first (a home, then a share's
    /// folder); empty: the whole tree, each mount inside its own root.
    jails: Vec<VPath>,
    setstat_mode: SetstatMode,
    interrupted: InterruptedUploads,
    /// Modification times clients set on object stores (see `times`).
    times: Option<Arc<dyn TimeBook>>,
}

/// What becomes of an upload cut off by a lost connection:
/// `[storage] interrupted_uploads`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterruptedUploads {
    /// Nothing is published: the old file (or none) stays.
    #[default]
    Discard,
    /// The bytes received in order are published at the target, so clients
    /// resume (`reput`, `curl -C -`).
    Keep,
}

/// What an attribute change (SFTP SETSTAT) gets where storage cannot keep it
/// (object stores): `[storage] setstat_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetstatMode {
    /// Answered "unsupported": the client knows nothing changed.
    #[default]
    Refuse,
    /// Answered OK and changes nothing, for clients that abort on a refusal.
    Ignore,
}

/// A stream of directory entries, produced page by page from storage.
pub type EntryStream = BoxStream<'static, Result<Entry>>;

impl Vfs {
    pub fn new(table: MountTable, buffer_size: usize) -> Self {
        Vfs {
            table: Arc::new(table),
            buffer_size: buffer_size.max(4096),
            budget: Budget::default(),
            jails: Vec::new(),
            setstat_mode: SetstatMode::default(),
            interrupted: InterruptedUploads::default(),
            times: None,
        }
    }

    /// The same storage, confined to `jail` (inside this Vfs's own jails): a
    /// path outside it is refused, and on fs no symlink leads out of its real
    /// directory.
    pub fn jailed(&self, jail: &VPath) -> Vfs {
        let mut jails = self.jails.clone();
        jails.push(jail.clone());
        Vfs {
            table: self.table.clone(),
            buffer_size: self.buffer_size,
            budget: self.budget.clone(),
            jails,
            setstat_mode: self.setstat_mode,
            interrupted: self.interrupted,
            times: self.times.clone(),
        }
    }

    /// Whether an upload cut off by a lost connection keeps what it received.
    pub fn keeps_interrupted_uploads(&self) -> bool {
        self.interrupted == InterruptedUploads::Keep
    }

    /// Sets what becomes of uploads cut off by a lost connection.
    pub fn with_interrupted_uploads(mut self, mode: InterruptedUploads) -> Self {
        self.interrupted = mode;
        self
    }

    /// Draws upload buffers from `budget` (shared with the rest of the process).
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// The memory budget for transfer buffers.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Keeps the modification times clients set on object stores in `book`
    /// (see `times`); without one, such changes follow `setstat_mode`.
    pub fn with_times(mut self, book: Arc<dyn TimeBook>) -> Self {
        self.times = Some(book);
        self
    }

    /// The time book, for `r` on storage that keeps no times of its own.
    fn book(&self, r: &Resolved<'_>) -> Option<&Arc<dyn TimeBook>> {
        self.times
            .as_ref()
            .filter(|_| r.mount.connector.local_root.is_none())
    }

    /// Forgets the kept time of `r`'s key (written, deleted or moved by wharf).
    async fn forget_time(&self, r: &Resolved<'_>) -> Result<()> {
        let Some(book) = self.book(r) else {
            return Ok(());
        };
        let connector = r.mount.connector.name.clone();
        let key = r.file_key().trim_end_matches('/').to_string();
        times::run(book, move |b| b.time_delete(&connector, &key)).await
    }

    /// Keeps `mtime` for the object at `path` as it is now.
    async fn keep_time(&self, path: &VPath, mtime: std::time::SystemTime) -> Result<()> {
        let r = self.resolve(path)?;
        let Some(book) = self.book(&r) else {
            return Ok(());
        };
        let entry = self.stat(path).await?;
        let key = r.file_key().trim_end_matches('/').to_string();
        let kept = KeptTime {
            connector: r.mount.connector.name.clone(),
            dir: times::dir_of(&key),
            key,
            mtime_ms: times::to_ms(mtime),
            size: entry.size,
            tag: times::validator(&entry),
        };
        // The stat above reported the old kept time; the row is replaced.
        times::run(book, move |b| b.time_put(&kept)).await
    }

    /// The kept time of `from` if it still holds, so a move can carry it.
    async fn kept_time_of(&self, from: &VPath, r: &Resolved<'_>) -> Result<Option<i64>> {
        let Some(book) = self.book(r) else {
            return Ok(None);
        };
        let connector = r.mount.connector.name.clone();
        let key = r.file_key().trim_end_matches('/').to_string();
        let Some(kept) = times::run(book, move |b| b.time_get(&connector, &key)).await? else {
            return Ok(None);
        };
        let entry = self.stat_stored(from, r).await?;
        Ok(times::holds(&entry, &kept).then_some(kept.mtime_ms))
    }

    /// Gives `to` the time carried from a moved object, if there was one.
    async fn carry_time(&self, to: &VPath, mtime_ms: Option<i64>) -> Result<()> {
        match mtime_ms {
            Some(ms) => {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
                self.keep_time(to, t).await
            }
            None => Ok(()),
        }
    }

    /// Whether `path` lies on storage where only modification times are kept
    /// (in the time book): permissions and sizes asked with a time there follow
    /// `setstat_mode` on their own.
    pub fn keeps_only_times(&self, path: &VPath) -> bool {
        !self.table.is_virtual_dir(path)
            && self.resolve(path).is_ok_and(|r| self.book(&r).is_some())
    }

    /// Whether `setstat_mode` refuses what storage cannot keep.
    pub fn refuses_unkept_attrs(&self) -> bool {
        self.setstat_mode == SetstatMode::Refuse
    }

    /// Sets what attribute changes get on storage that cannot keep them.
    pub fn with_setstat_mode(mut self, mode: SetstatMode) -> Self {
        self.setstat_mode = mode;
        self
    }

    pub fn mounts(&self) -> &[Mount] {
        self.table.mounts()
    }

    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    fn resolve(&self, path: &VPath) -> Result<Resolved<'_>> {
        if !self.jails.iter().all(|j| path.starts_with(j)) {
            return Err(Error::denied(format!(
                "{path} is outside the permitted folder"
            )));
        }
        self.table.resolve(path)
    }

    /// Where `path` (resolved as `r`) lies on a local disk, with the jails that
    /// confine it there; `None` off fs.
    fn place(&self, path: &VPath, r: &Resolved<'_>) -> Option<guard::Place> {
        self.place_in(path, r).map(|(place, _)| place)
    }

    /// [`Vfs::place`], and the virtual path of its innermost jail (where a
    /// jail-absolute symlink text is read from).
    fn place_in(&self, path: &VPath, r: &Resolved<'_>) -> Option<(guard::Place, VPath)> {
        let root = r.mount.connector.local_root.clone()?;
        let mut jails = Vec::new();
        let mount_root = r.mount.root.trim_end_matches('/');
        if !mount_root.is_empty() {
            jails.push(mount_root.to_string());
        }
        // Jails below the mount point become directories to resolve inside; a
        // jail above it already holds the whole mount.
        let mut anchor = &r.mount.at;
        for jail in &self.jails {
            if let Some(rest) = jail.strip_prefix(anchor).filter(|r| !r.is_empty()) {
                jails.push(rest.to_string());
                anchor = jail;
            }
        }
        let rel = path.strip_prefix(anchor)?.to_string();
        Some((guard::Place { root, jails, rel }, anchor.clone()))
    }

    pub async fn stat(&self, path: &VPath) -> Result<Entry> {
        if self.table.is_virtual_dir(path) {
            return Ok(Entry::dir(path.clone()));
        }
        let r = self.resolve(path)?;
        if r.key == r.mount.root {
            // A mount root exists by configuration, even on an empty bucket or
            // under a prefix nothing was written to yet.
            return Ok(Entry::dir(path.clone()));
        }
        if let Some(place) = self.place(path, &r) {
            let name = &r.mount.connector.name;
            return timed(name, "stat", local_ops::stat(place, path)).await;
        }
        let mut entry = self.stat_stored(path, &r).await?;
        if let Some(book) = self.book(&r) {
            let connector = r.mount.connector.name.clone();
            let key = r.file_key().trim_end_matches('/').to_string();
            if let Some(kept) = times::run(book, move |b| b.time_get(&connector, &key)).await? {
                times::apply(&mut entry, &kept);
            }
        }
        Ok(entry)
    }

    /// What an object store says of `path` (a file, or a folder marker or
    /// prefix), before any kept time.
    async fn stat_stored(&self, path: &VPath, r: &Resolved<'_>) -> Result<Entry> {
        let op = &r.mount.connector.operator;
        match op.stat(r.file_key()).await {
            Ok(meta) if meta.is_file() => {
                return Entry::from_metadata(path.clone(), &meta)
                    .ok_or_else(|| Error::not_found(format!("{path}: no such file")))
            }
            Ok(_) => {}
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(Error::from(e).context(format!("stat {path}"))),
        }
        match op.stat(&r.dir_key()).await {
            Ok(meta) if meta.is_dir() => Ok(Entry {
                modified: meta.last_modified().map(Into::into),
                ..Entry::dir(path.clone())
            }),
            Ok(_) => Err(Error::not_found(format!("{path}: no such file"))),
            Err(e) if is_absent(&e) => Err(Error::not_found(format!(
                "{path}: no such file or directory"
            ))),
            Err(e) => Err(Error::from(e).context(format!("stat {path}"))),
        }
    }

    /// As [`Vfs::stat`], but a symlink on local disk is described as one: its
    /// `link` text is set (see [`Entry::link`]); what it leads to must still
    /// lie inside the jail, as for STAT. Elsewhere the same as `stat`.
    pub async fn lstat(&self, path: &VPath) -> Result<Entry> {
        if self.table.is_virtual_dir(path) {
            return self.stat(path).await;
        }
        let r = self.resolve(path)?;
        if r.key == r.mount.root {
            return self.stat(path).await;
        }
        let Some((place, anchor)) = self.place_in(path, &r) else {
            return self.stat(path).await;
        };
        let name = r.mount.connector.name.clone();
        let mut entry = timed(&name, "stat", local_ops::lstat(place, path)).await?;
        entry.link = entry.link.take().and_then(|t| virtual_text(&anchor, t));
        Ok(entry)
    }

    async fn stat_dir(&self, path: &VPath) -> Result<Entry> {
        let entry = self.stat(path).await?;
        if !entry.is_dir() {
            return Err(Error::new(
                ErrorKind::NotADirectory,
                format!("{path} is not a directory"),
            ));
        }
        Ok(entry)
    }

    /// Whether attribute changes at `path` are applied (`Ok(true)`) or answered
    /// OK and ignored (`Ok(false)`, `setstat_mode = "ignore"`); refused with
    /// `Unsupported` where storage keeps no attributes (object stores).
    pub fn attrs_supported(&self, path: &VPath, attrs: &SetAttrs) -> Result<bool> {
        if self.table.is_virtual_dir(path) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{path} is a mount point: its attributes cannot be set"),
            ));
        }
        let r = self.resolve(path)?;
        if r.mount.connector.local_root.is_some() {
            return Ok(true);
        }
        let rest = SetAttrs {
            atime: None,
            mtime: None,
            ..attrs.clone()
        };
        if self.book(&r).is_some() && (attrs.mtime.is_some() || rest.is_empty()) {
            // Times are kept; what else is asked follows `setstat_mode`, told
            // by `set_attrs` once the time is kept.
            return Ok(true);
        }
        match self.setstat_mode {
            SetstatMode::Ignore => Ok(false),
            SetstatMode::Refuse => Err(Error::new(
                ErrorKind::Unsupported,
                format!("{path}: this storage keeps no permissions or times"),
            )),
        }
    }

    /// Applies attribute changes (SFTP SETSTAT) where storage keeps them; returns
    /// whether anything was applied (see [`Vfs::attrs_supported`]).
    /// On object stores with a time book the modification time is kept (see
    /// `times`) and permissions or a size asked with it follow `setstat_mode`:
    /// ignored, or refused after the time is kept.
    pub async fn set_attrs(&self, path: &VPath, attrs: &SetAttrs) -> Result<bool> {
        if !self.attrs_supported(path, attrs)? {
            // Still an error for a name that does not exist.
            self.stat(path).await?;
            return Ok(false);
        }
        let r = self.resolve(path)?;
        if self.book(&r).is_some() {
            match attrs.mtime {
                Some(t) => self.keep_time(path, t).await?,
                None => drop(self.stat(path).await?),
            }
            let rest = SetAttrs {
                atime: None,
                mtime: None,
                ..attrs.clone()
            };
            if !rest.is_empty() && self.setstat_mode == SetstatMode::Refuse {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "{path}: this storage keeps no permissions or sizes (the time was kept)"
                    ),
                ));
            }
            return Ok(true);
        }
        let place = self
            .place(path, &r)
            .ok_or_else(|| Error::denied(format!("{path} is outside the permitted folder")))?;
        local_attrs::set(place, path, attrs.clone()).await?;
        Ok(true)
    }

    /// Lists `dir` as a stream: entries arrive as storage returns its pages, so a
    /// directory of any size is listed in bounded memory. Mount points below `dir`
    /// come last.
    pub async fn list(&self, dir: &VPath) -> Result<EntryStream> {
        self.stat_dir(dir).await?;
        let mounts: Vec<Entry> = self
            .table
            .child_mounts(dir)
            .into_iter()
            .filter_map(|name| dir.join(&name).ok().map(Entry::dir))
            .collect();
        if self.table.is_virtual_dir(dir) {
            return Ok(stream::iter(mounts.into_iter().map(Ok)).boxed());
        }
        let r = self.resolve(dir)?;
        let dir_key = r.dir_key();
        let connector = r.mount.connector.clone();
        let mut shadowed: Vec<String> = mounts.iter().map(|m| m.name().to_string()).collect();
        // Direct uploads are staged in the bucket, below the connector's root.
        if r.key.is_empty() && connector.direct_upload.is_some() {
            shadowed.push(PARTIAL_DIR.to_string());
        }
        if let Some((place, anchor)) = self.place_in(dir, &r) {
            let mut hidden = shadowed;
            if r.key.is_empty() {
                hidden.push(PARTIAL_DIR.to_string());
            }
            let stored = local_list::list(place, dir.clone(), hidden).await?;
            return Ok(stored
                .map_ok(move |mut e| {
                    e.link = e.link.take().and_then(|t| virtual_text(&anchor, t));
                    e
                })
                .chain(stream::iter(mounts.into_iter().map(Ok)))
                .boxed());
        }
        let lister = connector
            .operator
            .lister(&dir_key)
            .await
            .map_err(|e| Error::from(e).context(format!("list {dir}")))?;
        let kept: Arc<std::collections::HashMap<String, KeptTime>> = match self.book(&r) {
            Some(book) => {
                let name = connector.name.clone();
                let folder = dir_key.trim_start_matches('/').to_string();
                let rows = times::run(book, move |b| b.times_in(&name, &folder)).await?;
                Arc::new(rows.into_iter().map(|t| (t.key.clone(), t)).collect())
            }
            None => Arc::default(),
        };
        let dir = dir.clone();
        let stored = lister.map_err(Error::from).try_filter_map(move |item| {
            let kept = kept.clone();
            let connector = connector.clone();
            let dir = dir.clone();
            let dir_key = dir_key.clone();
            let skip = item.path() == dir_key
                || item.path() == dir_key.trim_start_matches('/')
                || shadowed
                    .iter()
                    .any(|s| s == item.name().trim_end_matches('/'));
            async move {
                if skip {
                    return Ok(None);
                }
                let key = item.path().trim_end_matches('/').to_string();
                let mut entry = list_entry(&connector, &dir, item).await?;
                if let (Some(e), Some(t)) = (entry.as_mut(), kept.get(&key)) {
                    times::apply(e, t);
                }
                Ok(entry)
            }
        });
        Ok(stored
            .chain(stream::iter(mounts.into_iter().map(Ok)))
            .boxed())
    }

    /// Opens a file for ranged reads.
    pub async fn open(&self, path: &VPath) -> Result<FileReader> {
        if self.table.is_virtual_dir(path) {
            return Err(Error::new(
                ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            ));
        }
        let r = self.resolve(path)?;
        let connector = &r.mount.connector;
        if let Some(place) = self.place(path, &r) {
            let (reader, size) = LocalReader::open(place, path, self.buffer_size).await?;
            return Ok(FileReader {
                source: Source::Local(reader),
                size,
                path: path.clone(),
            });
        }
        let entry = self.stat(path).await?;
        if entry.is_dir() {
            return Err(Error::new(
                ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            ));
        }
        let mut builder = connector.operator.reader_with(r.file_key());
        if !connector.remote {
            // Locally a chunk is one read call; across a network one request per
            // chunk would wait a round trip each, so there a range is one request
            // whose body streams (TCP bounds what it buffers).
            builder = builder.chunk(self.buffer_size);
        }
        let reader = builder
            .await
            .map_err(|e| Error::from(e).context(format!("open {path}")))?;
        Ok(FileReader {
            source: Source::Storage(reader),
            size: entry.size,
            path: path.clone(),
        })
    }

    /// Starts an upload to `path`. Its directory must exist; `path` must not be a
    /// directory. The file appears (or replaces the old one) when the writer closes.
    pub async fn create(&self, path: &VPath) -> Result<FileWriter> {
        self.check_create(path).await?;
        self.create_checked(path).await
    }

    /// [`Vfs::create`] for a caller that has just run the checks (an SFTP OPEN
    /// followed by its first WRITE): storage would refuse a vanished directory
    /// anyway, and each skipped lookup is a round trip per small file.
    pub async fn create_checked(&self, path: &VPath) -> Result<FileWriter> {
        let r = self.resolve(path)?;
        let connector = &r.mount.connector;
        let keep_on_drop = self.interrupted == InterruptedUploads::Keep;
        if let (Some(target), Some(staging)) = (self.place(path, &r), &connector.staging_dir) {
            // Waits while the budget is spent: a flood of uploads queues here.
            let reserved = self.budget.reserve(self.buffer_size).await;
            let mut writer = LocalWriter::new(staging, target, self.buffer_size);
            writer.keep_on_drop(keep_on_drop);
            return Ok(FileWriter {
                inner: Some(Upload::Local(writer)),
                path: path.clone(),
                written: 0,
                keep_on_drop,
                one_shot_max: None,
                reserved: Some(reserved),
                refill: Some((self.budget.clone(), self.buffer_size)),
                grow: None,
            });
        }
        // A new version is "now" unless the client sets a time again.
        self.forget_time(&r).await?;
        let op = &connector.operator;
        let cap = op.info().capability();
        let mut builder = op.writer_with(r.file_key());
        let mut reserved = None;
        let mut one_shot_max = None;
        let mut grow = None;
        if !cap.write_can_multi && connector.remote {
            // One request at close: collect every write (the service's writer
            // refuses a second one) up to the cap, checked by the FileWriter.
            builder = builder.chunk(ONE_SHOT_MAX);
            one_shot_max = Some(ONE_SHOT_MAX as u64);
            grow = Some(self.budget.clone());
        }
        let mut parts = None;
        if cap.write_can_multi {
            // Object stores upload in parts of at least their minimum part size,
            // growing with the transfer (`parts.rs`); the first size bounds what
            // a small upload buffers.
            let part = self.buffer_size.max(cap.write_multi_min_size.unwrap_or(0));
            let largest = PART_CAP.min(cap.write_multi_max_size.unwrap_or(usize::MAX));
            // Parts in flight at once, so one part's round trip does not stall
            // the next: memory held is the part being filled plus those. When
            // the budget is tight, one part at a time rather than waiting.
            let want = part * (1 + UPLOAD_PARTS_IN_FLIGHT);
            let in_flight = if connector.remote && want <= self.budget.total() {
                reserved = self.budget.try_reserve(want);
                if reserved.is_some() {
                    UPLOAD_PARTS_IN_FLIGHT
                } else {
                    1
                }
            } else {
                1
            };
            if in_flight > 1 {
                builder = builder.concurrent(in_flight);
            }
            if reserved.is_none() {
                reserved = Some(self.budget.reserve(part * 2).await);
            }
            parts = Some((PartSchedule::new(part, largest), in_flight + 1));
        }
        let writer = builder
            .await
            .map_err(|e| Error::from(e).context(format!("upload to {path}")))?;
        let upload = match parts {
            Some((schedule, held)) => Upload::Parts(Box::new(parts::PartWriter::new(
                writer,
                schedule,
                self.budget.clone(),
                held,
            ))),
            None => Upload::Storage(writer),
        };
        Ok(FileWriter {
            inner: Some(upload),
            path: path.clone(),
            written: 0,
            keep_on_drop,
            one_shot_max,
            reserved,
            refill: None,
            grow,
        })
    }

    /// The figures of the disk holding `path` (SFTP `statvfs@openssh.com`);
    /// unsupported off local disk.
    pub async fn statvfs(&self, path: &VPath) -> Result<FsStats> {
        let unsupported = || {
            Error::new(
                ErrorKind::Unsupported,
                "disk figures are not available on this storage",
            )
            .with_public("disk figures are not available on this storage")
        };
        if self.table.is_virtual_dir(path) {
            return Err(unsupported());
        }
        let r = self.resolve(path)?;
        match self.place(path, &r) {
            Some(place) => local_fsinfo::statvfs(place, path).await,
            None => Err(unsupported()),
        }
    }

    /// Where `path` lies on local disk, or the refusal of `what` elsewhere.
    fn local_place(&self, path: &VPath, what: &str) -> Result<guard::Place> {
        let unsupported = || {
            Error::new(
                ErrorKind::Unsupported,
                format!("{what} are not supported on this storage"),
            )
            .with_public(format!("{what} are not supported on this storage"))
        };
        if self.table.is_virtual_dir(path) {
            return Err(unsupported());
        }
        let r = self.resolve(path)?;
        self.place(path, &r).ok_or_else(unsupported)
    }

    /// Creates the symlink `link` with the text `target` (local disk only; the
    /// caller checked where the text leads).
    pub async fn symlink(&self, link: &VPath, target: &str) -> Result<()> {
        let place = self.local_place(link, "symlinks")?;
        local_links::symlink(place, target.to_string(), link).await
    }

    /// The text of the symlink `link` (local disk only).
    /// An absolute text is given as a virtual path (see [`Entry::link`]).
    pub async fn readlink(&self, link: &VPath) -> Result<String> {
        let place = self.local_place(link, "symlinks")?;
        let r = self.resolve(link)?;
        let anchor = self
            .place_in(link, &r)
            .map(|(_, anchor)| anchor)
            .unwrap_or_else(VPath::root);
        let text = local_links::readlink(place, link).await?;
        virtual_text(&anchor, text)
            .ok_or_else(|| Error::denied(format!("{link} leads outside the permitted folder")))
    }

    /// Makes `to` a hard link to the file `from` (local disk, same connector).
    pub async fn hardlink(&self, from: &VPath, to: &VPath) -> Result<()> {
        let a = self.local_place(from, "hard links")?;
        let b = self.local_place(to, "hard links")?;
        if a.root != b.root {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "hard links across storages are not supported",
            )
            .with_public("hard links across storages are not supported"));
        }
        if self.stat(from).await?.is_dir() {
            return Err(Error::new(
                ErrorKind::IsADirectory,
                format!("{from} is a directory"),
            ));
        }
        local_links::hardlink(a, b, to).await
    }

    /// Whether uploads to `path` are random-access (a staged file on local
    /// disk: writes at any offset, reads back); elsewhere they are sequential.
    pub fn random_writes(&self, path: &VPath) -> bool {
        self.resolve(path).is_ok_and(|r| {
            r.mount.connector.staging_dir.is_some() && self.place(path, &r).is_some()
        })
    }

    /// Starts a random-access upload to `path` seeded with the current file's
    /// content (a file opened for update): only the bytes written change, and
    /// the new version replaces the old one atomically at close. Local disk only.
    pub async fn create_seeded(&self, path: &VPath) -> Result<FileWriter> {
        let r = self.resolve(path)?;
        let source = self.place(path, &r);
        let mut writer = self.create_checked(path).await?;
        match (writer.inner.as_mut(), source) {
            (Some(Upload::Local(w)), Some(source)) => {
                w.seed(source)
                    .await
                    .map_err(|e| e.context(format!("opening {path} for update")))?;
                writer.written = 0;
                Ok(writer)
            }
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                "writes must be sequential on this storage",
            )),
        }
    }

    /// Whether an upload to `path` could start: its directory exists and `path` is
    /// not a directory.
    pub async fn check_create(&self, path: &VPath) -> Result<()> {
        let current = match self.stat(path).await {
            Ok(e) => Some(e),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        self.check_create_known(path, current.as_ref()).await
    }

    /// [`Vfs::check_create`] when the caller already looked `path` up: an
    /// existing file proves its directory exists, so only a new file costs a
    /// lookup (of its directory).
    pub async fn check_create_known(&self, path: &VPath, current: Option<&Entry>) -> Result<()> {
        match current {
            Some(e) if e.is_dir() => Err(Error::new(
                ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            )),
            Some(_) => Ok(()),
            None => {
                let parent = path
                    .parent()
                    .ok_or_else(|| Error::new(ErrorKind::IsADirectory, "/ is a directory"))?;
                self.stat_dir(&parent)
                    .await
                    .map(drop)
                    .map_err(|e| e.context(format!("upload to {path}")))
            }
        }
    }

    /// Removes a file (not a directory).
    pub async fn delete(&self, path: &VPath) -> Result<()> {
        let entry = self.stat(path).await?;
        if entry.is_dir() {
            return Err(Error::new(
                ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            ));
        }
        let r = self.resolve(path)?;
        if let Some(place) = self.place(path, &r) {
            return local_ops::delete(place, path).await;
        }
        r.mount
            .connector
            .operator
            .delete(r.file_key())
            .await
            .map_err(|e| Error::from(e).context(format!("delete {path}")))?;
        self.forget_time(&r).await
    }

    /// Creates one directory; its parent must exist and the name must be free.
    pub async fn mkdir(&self, path: &VPath) -> Result<()> {
        if let Some(parent) = path.parent() {
            self.stat_dir(&parent)
                .await
                .map_err(|e| e.context(format!("mkdir {path}")))?;
        }
        match self.stat(path).await {
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{path} already exists"),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let r = self.resolve(path)?;
        if let Some(place) = self.place(path, &r) {
            let name = &r.mount.connector.name;
            return timed(name, "create_dir", local_ops::mkdir(place, path)).await;
        }
        r.mount
            .connector
            .operator
            .create_dir(&r.dir_key())
            .await
            .map_err(|e| Error::from(e).context(format!("mkdir {path}")))
    }

    /// Removes an empty directory. Mount points cannot be removed.
    pub async fn rmdir(&self, path: &VPath) -> Result<()> {
        self.stat_dir(path).await?;
        let r = self.resolve(path)?;
        if r.key.is_empty() || !self.table.child_mounts(path).is_empty() {
            return Err(Error::denied(format!("{path} is a mount point")));
        }
        if self.list(path).await?.next().await.transpose()?.is_some() {
            return Err(Error::new(
                ErrorKind::DirectoryNotEmpty,
                format!("{path} is not empty"),
            ));
        }
        if let Some(place) = self.place(path, &r) {
            return local_ops::rmdir(place, path).await;
        }
        r.mount
            .connector
            .operator
            .delete(&r.dir_key())
            .await
            .map_err(|e| Error::from(e).context(format!("rmdir {path}")))?;
        self.forget_time(&r).await
    }

    /// Moves a file or a directory. With `overwrite`, an existing target file is
    /// replaced (POSIX rename); otherwise an existing target is an error (SFTP v3).
    pub async fn rename(&self, from: &VPath, to: &VPath, overwrite: bool) -> Result<()> {
        let src = self.stat(from).await?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(from) {
            return Err(Error::invalid(format!(
                "cannot move {from} into itself ({to})"
            )));
        }
        let rf = self.resolve(from)?;
        if rf.key.is_empty() {
            return Err(Error::denied(format!("{from} is a mount point")));
        }
        match self.stat(to).await {
            Ok(dst) if !overwrite || dst.is_dir() || src.is_dir() => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{to} already exists"),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = to.parent() {
            self.stat_dir(&parent)
                .await
                .map_err(|e| e.context(format!("rename to {to}")))?;
        }
        let rt = self.resolve(to)?;
        let same = Arc::ptr_eq(&rf.mount.connector, &rt.mount.connector);
        let op = &rf.mount.connector.operator;
        let ctx = |e: opendal::Error| Error::from(e).context(format!("rename {from} to {to}"));
        if same {
            if let (Some(a), Some(b)) = (self.place(from, &rf), self.place(to, &rt)) {
                let name = &rf.mount.connector.name;
                return timed(name, "rename", local_ops::rename(a, b, from)).await;
            }
        }
        let carried = match src.kind {
            EntryKind::File => self.kept_time_of(from, &rf).await?,
            EntryKind::Dir => None,
        };
        match (src.kind, same) {
            (EntryKind::File, true) if op.info().capability().rename => {
                op.rename(rf.file_key(), rt.file_key()).await.map_err(ctx)?;
                self.forget_time(&rf).await?;
            }
            (EntryKind::File, true) if op.info().capability().copy => {
                op.copy(rf.file_key(), rt.file_key()).await.map_err(ctx)?;
                op.delete(rf.file_key()).await.map_err(ctx)?;
                self.forget_time(&rf).await?;
            }
            (EntryKind::File, _) => {
                self.copy(from, to).await?;
                self.delete(from).await?;
            }
            (EntryKind::Dir, _) => return self.move_tree(from, to).await,
        }
        // A copied object is new to the service (new LastModified): the time
        // is kept again against what it is now.
        self.carry_time(to, carried).await
    }

    /// Moves a directory tree where the service cannot: copy everything first, then
    /// delete the source, so a failure midway loses nothing.
    async fn move_tree(&self, from: &VPath, to: &VPath) -> Result<()> {
        let mut dirs = vec![from.clone()];
        let mut files = Vec::new();
        let mut i = 0;
        while i < dirs.len() {
            let dir = dirs[i].clone();
            let mut listing = self.list(&dir).await?;
            while let Some(entry) = listing.try_next().await? {
                match entry.kind {
                    EntryKind::Dir => dirs.push(entry.path),
                    EntryKind::File => files.push(entry.path),
                }
            }
            i += 1;
        }
        let target_of = |p: &VPath| -> Result<VPath> {
            let rest = p.strip_prefix(from).unwrap_or_default();
            to.join(rest)
        };
        for dir in &dirs {
            self.mkdir(&target_of(dir)?).await?;
        }
        for file in &files {
            let rf = self.resolve(file)?;
            let carried = self.kept_time_of(file, &rf).await?;
            let target = target_of(file)?;
            self.copy(file, &target).await?;
            self.carry_time(&target, carried).await?;
        }
        for file in &files {
            self.delete(file).await?;
        }
        for dir in dirs.iter().rev() {
            self.rmdir(dir).await?;
        }
        Ok(())
    }

    /// Streams a file to another path, on the same or another connector.
    pub async fn copy(&self, from: &VPath, to: &VPath) -> Result<u64> {
        let reader = self.open(from).await?;
        let size = reader.size();
        let mut chunks = reader.stream(0..size).await?;
        let mut writer = self.create(to).await?;
        while let Some(chunk) = chunks.try_next().await? {
            writer.write(chunk).await?;
        }
        writer.close().await
    }

    /// Writes `data` to `path` in one call: for small files (tests, generated files).
    pub async fn write_all(&self, path: &VPath, data: Bytes) -> Result<u64> {
        let mut writer = self.create(path).await?;
        writer.write(data).await?;
        writer.close().await
    }
}

fn is_absent(e: &opendal::Error) -> bool {
    matches!(
        e.kind(),
        opendal::ErrorKind::NotFound
            | opendal::ErrorKind::IsADirectory
            | opendal::ErrorKind::NotADirectory
    )
}

/// Turns one storage listing item into an entry of `dir`, or skips names that are
/// not valid virtual names. (fs listings are read by `local_list`.)
async fn list_entry(
    connector: &Connector,
    dir: &VPath,
    item: opendal::Entry,
) -> Result<Option<Entry>> {
    let name = item.name().trim_end_matches('/');
    let Ok(path) = dir.join(name) else {
        tracing::warn!(
            key = item.path(),
            "skipping a stored name that is not a valid path"
        );
        return Ok(None);
    };
    if path.file_name() != Some(name) {
        return Ok(None);
    }
    let meta = item.metadata();
    let complete = meta.is_dir() || (meta.is_file() && meta.last_modified().is_some());
    if complete {
        return Ok(Entry::from_metadata(path, meta));
    }
    // Services whose listings omit sizes or times need a stat.
    let key = item.path().trim_end_matches('/');
    match connector.operator.stat(key).await {
        Ok(m) if m.is_file() => Ok(Entry::from_metadata(path, &m)),
        Ok(_) => Ok(Some(Entry::dir(path))),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(Error::from(e).context(format!("stat {path}"))),
    }
}

/// Runs local-disk work on the blocking pool, as one task.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Error::from),
        Err(e) => Err(Error::internal("a disk task failed").with_source(e)),
    }
}

/// Times a local-disk step as the connectors' OpenDAL layer times the same call
/// on other services (`wharf_storage_operation_seconds`): fs stat, mkdir and
/// rename no longer pass through OpenDAL.
async fn timed<T>(
    connector: &str,
    operation: &'static str,
    work: impl std::future::Future<Output = T>,
) -> T {
    let start = std::time::Instant::now();
    let out = work.await;
    crate::metrics::storage_operation(connector, operation, start.elapsed());
    out
}

/// A symlink text from the fs code in the virtual view: a relative text as it
/// is; a jail-absolute one (`/` and the path below the innermost jail) as the
/// virtual path below `anchor`, that jail's virtual path.
fn virtual_text(anchor: &VPath, text: String) -> Option<String> {
    match text.strip_prefix('/') {
        None => Some(text),
        Some(below) => anchor.join(below).ok().map(|p| p.to_string()),
    }
}
