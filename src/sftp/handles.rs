//! Open SFTP handles. Each handle is served by its own task, which takes its
//! requests in arrival order: reads and writes on one file stay ordered, while
//! different handles (and path operations) proceed in parallel.
//!
//! - Reads come from a read-ahead stream positioned at the next expected offset, so
//!   sequential downloads do not turn into one storage request per packet.
//! - Writes go sequentially into one storage upload. Clients that pipeline writes
//!   out of order are served by holding early blocks in a bounded reorder window.
//!   A resumed upload (`reput`, append) starts at its first write through
//!   `Session::create_keeping`, which streams the kept bytes of the old file into
//!   the new version, so the file is replaced atomically on close on every service.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use russh_sftp::protocol::{Attrs, FileAttributes, Name, Packet};
use tokio::sync::mpsc;

use super::flow::Replies;
use super::wire;
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Download, Session, Upload};
use crate::vfs::{ByteStream, EntryKind, EntryStream, SetAttrs, VPath};

/// The files this channel has open for writing, by path (see [`OpenUpload`]).
/// A path is present while an upload of it is open.
pub type Deferred = Arc<Mutex<HashMap<VPath, OpenUpload>>>;

/// Most bytes held for writes that arrived ahead of a gap (per handle). OpenSSH
/// keeps at most 64 requests of 32 KiB in flight; 8 MiB leaves room for clients
/// with bigger windows while keeping a session with many uploads bounded.
pub const REORDER_LIMIT: usize = 8 * 1024 * 1024;
/// Entries per READDIR reply.
const DIR_PAGE: usize = 128;

/// A request for one handle with what it costs until answered.
pub type Queued = (HandleReq, super::flow::Charge);

/// A request for one handle, routed by the dispatcher.
pub enum HandleReq {
    Read {
        id: u32,
        offset: u64,
        len: u32,
    },
    Write {
        id: u32,
        offset: u64,
        /// A slice of the request packet as read from the channel.
        data: Bytes,
    },
    ReadDir {
        id: u32,
    },
    Fstat {
        id: u32,
    },
    /// fsync: accepted; data is durable on close.
    Ack {
        id: u32,
    },
    /// `fstatvfs@openssh.com`: the figures of the disk holding the handle's file.
    Statvfs {
        id: u32,
    },
    /// FSETSTAT: applied now, or for an upload once it is published.
    SetStat {
        id: u32,
        attrs: FileAttributes,
    },
    Close {
        id: u32,
        /// For an upload: held until its file is published.
        guard: Option<super::closes::CloseGuard>,
    },
}

/// What was opened.
pub enum Handle {
    /// Boxed, like uploads: a download carries its reader and read-ahead state.
    Read(Box<ReadHandle>),
    /// Boxed: an upload carries its reorder window and hashing state.
    Write(Box<WriteHandle>),
    Dir(DirHandle),
}

/// Runs a handle until it is closed or the session ends. Replies go to `out`; a
/// READ first waits for room in the reply queue, so a client that reads its
/// replies slowly slows the storage reads instead of filling memory.
pub async fn serve(
    mut handle: Handle,
    session: std::sync::Arc<Session>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    out: Replies,
) {
    loop {
        // An upload the client sends nothing to for a while gives back its
        // share of the memory budget until its next write.
        let next = match tokio::time::timeout(UPLOAD_IDLE, rx.recv()).await {
            Ok(next) => next,
            Err(_) => {
                handle.idle().await;
                rx.recv().await
            }
        };
        let Some((req, charge)) = next else {
            break;
        };
        let closing = matches!(req, HandleReq::Close { .. });
        let sent = match req {
            HandleReq::Read { id, offset, len } if !matches!(handle, Handle::Dir(_)) => {
                match out.flow().data_room(len.min(wire::MAX_DATA) as usize).await {
                    Some(room) => match handle.read(id, offset, len, &session).await {
                        Ok(data) => out.send_encoded(data, room),
                        Err(status) => out.send_data(status, room),
                    },
                    // The channel is closing: nothing more is sent.
                    None => false,
                }
            }
            req => out.send(handle.handle(req, &session).await),
        };
        drop(charge);
        if !sent || closing {
            break;
        }
    }
    // The session ended with the handle open: an upload is dropped (not committed,
    // audited as interrupted); a download is audited with what was sent.
}

/// How long an upload may receive nothing before it gives back its share of
/// the memory budget ([`crate::session::Upload::idle`]).
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

impl Handle {
    /// Nothing came for [`UPLOAD_IDLE`]: an upload gives back its buffers'
    /// share of the memory budget.
    async fn idle(&mut self) {
        if let Handle::Write(w) = self {
            w.idle().await;
        }
    }

    /// A READ: the serialised DATA reply (its header, and the storage chunk
    /// itself, uncopied), or the status to send instead.
    async fn read(
        &mut self,
        id: u32,
        offset: u64,
        len: u32,
        session: &Session,
    ) -> std::result::Result<(Bytes, Bytes), Packet> {
        let data = match self {
            Handle::Read(r) => r.read(offset, len).await,
            Handle::Write(w) => w.read(session, offset, len).await,
            Handle::Dir(_) => return Err(not_for(id, "reading")),
        };
        match data {
            Ok(Some(data)) => Ok(wire::data_parts(id, data)),
            Ok(None) => Err(wire::eof(id)),
            Err(e) => Err(wire::error(id, &e)),
        }
    }

    async fn handle(&mut self, req: HandleReq, session: &Session) -> Packet {
        match req {
            // Reads of files go through `read` (see `serve`).
            HandleReq::Read { id, .. } => not_for(id, "reading"),
            HandleReq::Write { id, offset, data } => match self {
                Handle::Write(w) => match w.write(session, offset, data).await {
                    Ok(()) => wire::ok(id),
                    Err(e) => wire::error(id, &e),
                },
                _ => not_for(id, "writing"),
            },
            HandleReq::ReadDir { id } => match self {
                Handle::Dir(d) => d.next_page(id, &session.user().name).await,
                _ => not_for(id, "listing"),
            },
            HandleReq::Fstat { id } => {
                let entry = match self {
                    Handle::Write(w) => {
                        let existed = w.existing != Existing::Replace;
                        let old = if existed {
                            session.stat(&w.path).await.ok()
                        } else {
                            None
                        };
                        crate::vfs::Entry {
                            path: w.path.clone(),
                            kind: EntryKind::File,
                            size: w.visible_size(),
                            modified: Some(
                                w.pending.mtime.unwrap_or_else(std::time::SystemTime::now),
                            ),
                            mode: w.pending.mode.or(old.and_then(|o| o.mode)),
                            link: None,
                            etag: None,
                        }
                    }
                    other => match session.stat(other.path()).await {
                        Ok(e) => e,
                        Err(e) => return wire::error(id, &e),
                    },
                };
                Packet::Attrs(Attrs {
                    id,
                    attrs: wire::attrs(&entry, &session.user().name),
                })
            }
            HandleReq::Ack { id } => wire::ok(id),
            HandleReq::Statvfs { id } => {
                // A file being written may not exist yet: its folder's disk.
                let path = match self {
                    Handle::Write(w) => w.path.parent().unwrap_or_else(VPath::root),
                    other => other.path().clone(),
                };
                match session.statvfs(&path).await {
                    Ok(st) => wire::statvfs(id, &st),
                    Err(e) => wire::error(id, &e),
                }
            }
            HandleReq::SetStat { id, attrs } => {
                let res = match wire::set_attrs(&attrs) {
                    Ok(attrs) => match self {
                        Handle::Write(w) => w.set_attrs(session, attrs).await,
                        other => session.set_attrs(other.path(), &attrs).await,
                    },
                    Err(e) => Err(e),
                };
                match res {
                    Ok(()) => wire::ok(id),
                    Err(e) => wire::error(id, &e),
                }
            }
            HandleReq::Close { id, guard } => {
                let _guard = guard;
                let res = match std::mem::replace(self, Handle::Dir(DirHandle::closed())) {
                    Handle::Read(r) => {
                        r.download.finish(true).await;
                        Ok(())
                    }
                    Handle::Write(w) => w.close(session).await,
                    Handle::Dir(_) => Ok(()),
                };
                match res {
                    Ok(()) => wire::ok(id),
                    Err(e) => wire::error(id, &e),
                }
            }
        }
    }

    fn path(&self) -> &VPath {
        match self {
            Handle::Read(r) => r.download.path(),
            Handle::Write(w) => &w.path,
            Handle::Dir(d) => &d.path,
        }
    }
}

/// A request the handle cannot serve (reading a directory handle...): OpenSSH
/// answers "Failure".
fn not_for(id: u32, what: &str) -> Packet {
    tracing::debug!(request = what, "SFTP request on the wrong kind of handle");
    wire::plain(id, crate::reply::SftpCode::Failure)
}

pub struct ReadHandle {
    download: Download,
    /// The read-ahead stream, its position and the unread rest of its last chunk.
    ahead: Option<(u64, ByteStream, Bytes)>,
}

impl ReadHandle {
    pub fn new(download: Download) -> Self {
        ReadHandle {
            download,
            ahead: None,
        }
    }

    /// Up to `len` bytes at `offset`; `None` at end of file. The reply is filled to
    /// `len` except at the end of the file: short reads are legal in SFTP, but some
    /// clients (libssh2, hence curl) fail on them, and OpenSSH never sends them.
    async fn read(&mut self, offset: u64, len: u32) -> Result<Option<Bytes>> {
        let size = self.download.size();
        if offset >= size {
            return Ok(None);
        }
        let want = (len.min(wire::MAX_DATA) as u64).min(size - offset) as usize;
        if !matches!(&self.ahead, Some((pos, _, _)) if *pos == offset) {
            let stream = self.download.stream(offset..size).await?;
            self.ahead = Some((offset, stream, Bytes::new()));
        }
        let (pos, stream, rest) = self.ahead.as_mut().expect("set above");
        if rest.is_empty() {
            if let Some(chunk) = stream.try_next().await? {
                *rest = chunk;
            }
        }
        let data = if rest.len() >= want {
            // The common case: one chunk holds the whole reply, no copy.
            rest.split_to(want)
        } else {
            let mut out = bytes::BytesMut::with_capacity(want);
            while out.len() < want {
                if rest.is_empty() {
                    match stream.try_next().await? {
                        Some(chunk) => *rest = chunk,
                        None => break,
                    }
                }
                let n = (want - out.len()).min(rest.len());
                out.extend_from_slice(&rest.split_to(n));
            }
            out.freeze()
        };
        if data.is_empty() {
            self.ahead = None;
            return Ok(None);
        }
        *pos += data.len() as u64;
        self.download.add_sent(data.len() as u64);
        Ok(Some(data))
    }
}

/// How an upload relates to a file that was there before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (or there was none): the file starts empty.
    Replace,
    /// Update it (opened without TRUNC): its bytes stay except where written
    /// (`reput` is the case of writing from its end on).
    Resume { size: u64 },
    /// Write after its end whatever the offsets say (`APPEND`).
    Append { size: u64 },
}

/// A file this channel has open for writing, as path requests see it: STAT of
/// the path answers with its current size (the growing file exists, as with
/// OpenSSH), and SETSTAT by path goes to the handle (or waits for its close).
#[derive(Debug, Default)]
pub struct OpenUpload {
    /// The handle serving it, once registered.
    pub handle: Option<String>,
    /// SETSTAT changes by path, applied once published.
    pub attrs: SetAttrs,
    /// Its size as written so far.
    pub size: u64,
    /// Whether there was a file before (its other attributes come from it).
    pub existed: bool,
}

pub struct WriteHandle {
    path: VPath,
    /// Started at the first write (or at close for an empty file): only then is it
    /// known how much of an existing file a sequential resume keeps.
    upload: Option<Upload>,
    existing: Existing,
    /// Random access (local disk): writes go to their offsets in a staged copy
    /// seeded with the old file; reads see them. Otherwise one sequential stream.
    random: bool,
    /// Whether anything was written or truncated (an update that changed nothing
    /// is not published again).
    dirty: bool,
    /// For reads before the first write of a file opened read-write: the old file.
    peek: Option<Download>,
    /// The next offset the storage upload expects (sequential uploads).
    next: u64,
    /// Blocks that arrived ahead of `next` (sequential uploads).
    early: BTreeMap<u64, Bytes>,
    early_bytes: usize,
    /// The first failure; every later request on the handle reports it.
    failed: Option<Error>,
    /// Attribute changes asked on this handle (FSETSTAT), applied once published.
    pending: SetAttrs,
    /// This channel's open uploads, with SETSTATs asked by path.
    deferred: Deferred,
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if let Ok(mut d) = self.deferred.lock() {
            d.remove(&self.path);
        }
    }
}

/// The refusal of a write that a sequential upload cannot take.
fn sequential_only() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "writes must be sequential on this storage",
    )
    .with_public("writes must be sequential on this storage")
}

impl WriteHandle {
    pub fn new(path: VPath, existing: Existing, random: bool, deferred: Deferred) -> Self {
        let (size, existed) = match existing {
            Existing::Replace => (0, false),
            Existing::Resume { size } | Existing::Append { size } => (size, true),
        };
        if let Ok(mut d) = deferred.lock() {
            d.insert(
                path.clone(),
                OpenUpload {
                    size,
                    existed,
                    ..OpenUpload::default()
                },
            );
        }
        WriteHandle {
            path,
            upload: None,
            existing,
            random,
            dirty: false,
            peek: None,
            next: 0,
            early: BTreeMap::new(),
            early_bytes: 0,
            failed: None,
            pending: SetAttrs::default(),
            deferred,
        }
    }

    /// FSETSTAT before CLOSE (`sftp put -p`, `scp -p`): checked now, applied to
    /// the published file. A new size applies at once to a random-access upload
    /// (sshfs truncates through the handle or the path while the file is open).
    async fn set_attrs(&mut self, session: &Session, mut attrs: SetAttrs) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(Error::new(e.kind(), e.to_string()));
        }
        if self.random {
            if let Some(size) = attrs.size.take() {
                session.allow_set_attrs(&self.path).await?;
                self.ensure_started(session).await?;
                let up = self.upload.as_mut().expect("started above");
                up.truncate(size).await?;
                self.dirty = true;
                self.share_size();
            }
        }
        let (apply, answer) = session.check_set_attrs(&self.path, &attrs).await;
        if let Some(attrs) = apply {
            self.pending.merge(attrs);
        }
        answer
    }

    /// The size a client sees with FSTAT or STAT.
    fn visible_size(&self) -> u64 {
        match (&self.upload, self.existing) {
            (None, Existing::Resume { size } | Existing::Append { size }) => size,
            (None, Existing::Replace) => 0,
            (Some(up), _) if self.random => up.size(),
            (Some(_), _) => self.next + self.early_bytes as u64,
        }
    }

    fn share_size(&self) {
        let size = self.visible_size();
        if let Ok(mut d) = self.deferred.lock() {
            if let Some(open) = d.get_mut(&self.path) {
                open.size = size;
            }
        }
    }

    /// See [`Handle::idle`]. A failure (writing out what was gathered) ends
    /// the upload like a failed write: later requests report it.
    async fn idle(&mut self) {
        let Some(up) = self.upload.as_mut() else {
            return;
        };
        if let Err(e) = up.idle().await {
            self.failed = Some(
                Error::new(e.kind(), e.to_string()).with_public(crate::reply::text(&e).to_string()),
            );
            if let Some(up) = self.upload.take() {
                let _ = up.abort(e.kind().as_str()).await;
            }
        }
    }

    async fn write(&mut self, session: &Session, offset: u64, data: Bytes) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(Error::new(e.kind(), e.to_string()));
        }
        let res = self.accept(session, offset, data).await;
        if let Err(e) = &res {
            self.failed = Some(
                Error::new(e.kind(), e.to_string()).with_public(crate::reply::text(e).to_string()),
            );
            if let Some(up) = self.upload.take() {
                let _ = up.abort(e.kind().as_str()).await;
            }
        }
        self.share_size();
        res
    }

    /// Starts the storage upload. Random access: a staged copy seeded with the
    /// old file unless it is replaced. Sequential: the old file's bytes before
    /// `first_offset` are streamed first for a resume (all of them for an append).
    async fn start(&mut self, session: &Session, first_offset: u64) -> Result<()> {
        if let Some(peek) = self.peek.take() {
            peek.finish(true).await;
        }
        if self.random {
            // OPEN checked the permission and the directory a moment ago.
            self.upload = Some(match self.existing {
                Existing::Replace => session.create_keeping_checked(&self.path, 0).await?,
                _ => session.create_update_checked(&self.path).await?,
            });
            return Ok(());
        }
        let keep = match self.existing {
            Existing::Replace => 0,
            Existing::Append { size } => size,
            Existing::Resume { size } => first_offset.min(size),
        };
        self.upload = Some(session.create_keeping_checked(&self.path, keep).await?);
        self.next = keep;
        Ok(())
    }

    async fn ensure_started(&mut self, session: &Session) -> Result<()> {
        if self.upload.is_none() {
            self.start(session, 0).await?;
        }
        Ok(())
    }

    /// A READ on a handle opened read-write: what the file holds now.
    async fn read(&mut self, session: &Session, offset: u64, len: u32) -> Result<Option<Bytes>> {
        if let Some(e) = &self.failed {
            return Err(Error::new(e.kind(), e.to_string()));
        }
        let len = len.min(wire::MAX_DATA) as usize;
        let data = match self.upload.as_mut() {
            Some(up) => up.read_at(offset, len).await?,
            None if self.existing == Existing::Replace => Bytes::new(),
            None => {
                if self.peek.is_none() {
                    self.peek = Some(session.open_read(&self.path).await?);
                }
                let peek = self.peek.as_ref().expect("opened above");
                let mut out = bytes::BytesMut::new();
                while out.len() < len {
                    let got = peek
                        .read_at(offset + out.len() as u64, len - out.len())
                        .await?;
                    if got.is_empty() {
                        break;
                    }
                    out.extend_from_slice(&got);
                }
                out.freeze()
            }
        };
        Ok((!data.is_empty()).then_some(data))
    }

    async fn accept(&mut self, session: &Session, offset: u64, data: Bytes) -> Result<()> {
        if self.upload.is_none() {
            self.start(session, offset).await?;
        }
        self.dirty = true;
        if self.random {
            let up = self.upload.as_mut().expect("started above");
            let offset = match self.existing {
                Existing::Append { .. } => up.size(),
                _ => offset,
            };
            return up.write_at(offset, data).await;
        }
        let offset = match self.existing {
            Existing::Append { .. } => self.next,
            _ => offset,
        };
        if offset < self.next {
            return Err(
                sequential_only().context(format!("{}: rewriting at offset {offset}", self.path))
            );
        }
        if offset > self.next {
            if self.early_bytes + data.len() > REORDER_LIMIT {
                return Err(sequential_only().context(format!(
                    "{}: writes arrive more than {} MiB ahead",
                    self.path,
                    REORDER_LIMIT >> 20
                )));
            }
            self.early_bytes += data.len();
            self.early.insert(offset, data);
            return Ok(());
        }
        self.push(data).await?;
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let data = entry.remove();
            self.early_bytes -= data.len();
            self.push(data).await?;
        }
        Ok(())
    }

    async fn push(&mut self, data: Bytes) -> Result<()> {
        let len = data.len() as u64;
        self.upload
            .as_mut()
            .ok_or_else(|| Error::internal("upload already ended"))?
            .write(data)
            .await?;
        self.next += len;
        Ok(())
    }

    async fn close(mut self, session: &Session) -> Result<()> {
        if let Some(peek) = self.peek.take() {
            peek.finish(true).await;
        }
        self.publish(session).await?;
        let mut attrs = self
            .deferred
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&self.path))
            .map(|open| open.attrs)
            .unwrap_or_default();
        attrs.merge(std::mem::take(&mut self.pending));
        if attrs.is_empty() {
            return Ok(());
        }
        session.set_attrs(&self.path, &attrs).await.map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "{} was uploaded, but its attributes were not set: {e}",
                    self.path
                ),
            )
        })
    }

    async fn publish(&mut self, session: &Session) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut upload = match self.upload.take() {
            // Opened to update but nothing written: the file stays as it was.
            Some(up) if !self.dirty && self.existing != Existing::Replace => {
                return up.abort("unchanged").await;
            }
            Some(up) => up,
            // Opened to resume or append but nothing came: the file stays as it was.
            None if self.existing != Existing::Replace => return Ok(()),
            // Created and closed without data: an empty file.
            None => session.create(&self.path).await?,
        };
        if let Some((&gap_end, _)) = self.early.first_key_value() {
            let why = format!(
                "{}: upload incomplete, bytes {}..{gap_end} never arrived",
                self.path, self.next
            );
            upload.abort("incomplete").await?;
            return Err(Error::new(ErrorKind::InvalidInput, why));
        }
        if let (false, Existing::Resume { size }) = (self.random, self.existing) {
            // A sequential update that stopped before the old end keeps the old
            // tail, as a file written in place would.
            if self.next < size {
                let old = session.open_read(&self.path).await?;
                let mut tail = old.stream(self.next..size).await?;
                while let Some(chunk) = tail.try_next().await? {
                    upload.write(chunk).await?;
                }
                old.finish(true).await;
            }
        }
        upload.close().await.map(|_| ())
    }
}

pub struct DirHandle {
    path: VPath,
    entries: Option<EntryStream>,
    /// `.` and `..`, sent first, as OpenSSH lists them.
    dots: Vec<russh_sftp::protocol::File>,
}

impl DirHandle {
    pub fn new(path: VPath, entries: EntryStream, dots: Vec<russh_sftp::protocol::File>) -> Self {
        DirHandle {
            path,
            entries: Some(entries),
            dots,
        }
    }

    fn closed() -> Self {
        DirHandle {
            path: VPath::root(),
            entries: None,
            dots: Vec::new(),
        }
    }

    async fn next_page(&mut self, id: u32, owner: &str) -> Packet {
        let Some(stream) = self.entries.as_mut() else {
            return wire::eof(id);
        };
        let mut files = std::mem::take(&mut self.dots);
        while files.len() < DIR_PAGE {
            match stream.next().await {
                Some(Ok(entry)) => files.push(wire::file(&entry, owner)),
                Some(Err(e)) => {
                    self.entries = None;
                    return wire::error(id, &e);
                }
                None => {
                    self.entries = None;
                    break;
                }
            }
        }
        if files.is_empty() {
            wire::eof(id)
        } else {
            Packet::Name(Name { id, files })
        }
    }
}
