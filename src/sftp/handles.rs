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
use russh_sftp::protocol::{Attrs, Data, FileAttributes, Name, Packet, StatusCode};
use tokio::sync::mpsc;

use super::dispatch::Queued;
use super::flow::Replies;
use super::wire;
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Download, Session, Upload};
use crate::vfs::{ByteStream, EntryKind, EntryStream, SetAttrs, VPath};

/// Attribute changes asked by path (SETSTAT) for files this channel is still
/// uploading: the upload applies them once it is published. A path is present
/// while an upload of it is open.
pub type Deferred = Arc<Mutex<HashMap<VPath, SetAttrs>>>;

/// Most bytes held for writes that arrived ahead of a gap (per handle). OpenSSH
/// keeps at most 64 requests of 32 KiB in flight; 8 MiB leaves room for clients
/// with bigger windows while keeping a session with many uploads bounded.
pub const REORDER_LIMIT: usize = 8 * 1024 * 1024;
/// Entries per READDIR reply.
const DIR_PAGE: usize = 128;

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
        data: Vec<u8>,
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
    /// FSETSTAT: applied now, or for an upload once it is published.
    SetStat {
        id: u32,
        attrs: FileAttributes,
    },
    Close {
        id: u32,
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
    while let Some((req, charge)) = rx.recv().await {
        let closing = matches!(req, HandleReq::Close { .. });
        let sent = match req {
            HandleReq::Read { len, .. } if matches!(handle, Handle::Read(_)) => {
                match out.flow().data_room(len.min(wire::MAX_DATA) as usize).await {
                    Some(room) => out.send_data(handle.handle(req, &session).await, room),
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

impl Handle {
    async fn handle(&mut self, req: HandleReq, session: &Session) -> Packet {
        match req {
            HandleReq::Read { id, offset, len } => match self {
                Handle::Read(r) => match r.read(offset, len).await {
                    Ok(Some(data)) => Packet::Data(Data {
                        id,
                        data: data.to_vec(),
                    }),
                    Ok(None) => wire::status(id, StatusCode::Eof, "end of file"),
                    Err(e) => wire::error(id, &e),
                },
                _ => not_for(id, "reading"),
            },
            HandleReq::Write { id, offset, data } => match self {
                Handle::Write(w) => match w.write(session, offset, Bytes::from(data)).await {
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
                    Handle::Write(w) => crate::vfs::Entry {
                        path: w.path.clone(),
                        kind: EntryKind::File,
                        size: w.visible_size(),
                        modified: Some(w.pending.mtime.unwrap_or_else(std::time::SystemTime::now)),
                        mode: w.pending.mode,
                    },
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
            HandleReq::SetStat { id, attrs } => {
                let res = match wire::set_attrs(&attrs) {
                    Ok(attrs) => match self {
                        Handle::Write(w) => w.defer_attrs(session, attrs).await,
                        other => session.set_attrs(other.path(), &attrs).await,
                    },
                    Err(e) => Err(e),
                };
                match res {
                    Ok(()) => wire::ok(id),
                    Err(e) => wire::error(id, &e),
                }
            }
            HandleReq::Close { id } => {
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

fn not_for(id: u32, what: &str) -> Packet {
    wire::status(
        id,
        StatusCode::Failure,
        &format!("this handle is not open for {what}"),
    )
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
    /// Keep its bytes up to where the client starts writing (`reput`).
    Resume { size: u64 },
    /// Write after its end whatever the offsets say (`APPEND`).
    Append { size: u64 },
}

pub struct WriteHandle {
    path: VPath,
    /// Started at the first write (or at close for an empty file): only then is it
    /// known how much of an existing file a resume keeps.
    upload: Option<Upload>,
    existing: Existing,
    /// The next offset the storage upload expects.
    next: u64,
    /// Blocks that arrived ahead of `next`.
    early: BTreeMap<u64, Bytes>,
    early_bytes: usize,
    /// The first failure; every later request on the handle reports it.
    failed: Option<Error>,
    /// Attribute changes asked on this handle (FSETSTAT), applied once published.
    pending: SetAttrs,
    /// Those asked by path (SETSTAT) while this upload is open.
    deferred: Deferred,
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if let Ok(mut d) = self.deferred.lock() {
            d.remove(&self.path);
        }
    }
}

impl WriteHandle {
    pub fn new(path: VPath, existing: Existing, deferred: Deferred) -> Self {
        if let Ok(mut d) = deferred.lock() {
            d.insert(path.clone(), SetAttrs::default());
        }
        WriteHandle {
            path,
            upload: None,
            existing,
            next: 0,
            early: BTreeMap::new(),
            early_bytes: 0,
            failed: None,
            pending: SetAttrs::default(),
            deferred,
        }
    }

    /// FSETSTAT before CLOSE (`sftp put -p`, `scp -p`): checked now, applied to
    /// the published file.
    async fn defer_attrs(&mut self, session: &Session, attrs: SetAttrs) -> Result<()> {
        if session.check_set_attrs(&self.path, &attrs).await? {
            self.pending.merge(attrs);
        }
        Ok(())
    }

    /// The size a client sees with FSTAT: where a resume would continue.
    fn visible_size(&self) -> u64 {
        match self.existing {
            Existing::Resume { size } | Existing::Append { size } if self.upload.is_none() => size,
            _ => self.next + self.early_bytes as u64,
        }
    }

    async fn write(&mut self, session: &Session, offset: u64, data: Bytes) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(Error::new(e.kind(), e.to_string()));
        }
        let res = self.accept(session, offset, data).await;
        if let Err(e) = &res {
            self.failed = Some(Error::new(e.kind(), e.to_string()));
            if let Some(up) = self.upload.take() {
                let _ = up.abort(e.kind().as_str()).await;
            }
        }
        res
    }

    /// Starts the storage upload, keeping the old file's bytes before `first_offset`
    /// for a resume (all of them for an append).
    async fn start(&mut self, session: &Session, first_offset: u64) -> Result<()> {
        let keep = match self.existing {
            Existing::Replace => 0,
            Existing::Append { size } => size,
            Existing::Resume { size } => first_offset.min(size),
        };
        // OPEN checked the permission and the directory a moment ago.
        self.upload = Some(session.create_keeping_checked(&self.path, keep).await?);
        self.next = keep;
        Ok(())
    }

    async fn accept(&mut self, session: &Session, offset: u64, data: Bytes) -> Result<()> {
        if self.upload.is_none() {
            self.start(session, offset).await?;
        }
        let offset = match self.existing {
            Existing::Append { .. } => self.next,
            _ => offset,
        };
        if offset < self.next {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: rewriting bytes already written (offset {offset}) is not supported",
                    self.path
                ),
            ));
        }
        if offset > self.next {
            if self.early_bytes + data.len() > REORDER_LIMIT {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "{}: writes arrive too far out of order (more than {} MiB ahead)",
                        self.path,
                        REORDER_LIMIT >> 20
                    ),
                ));
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
        self.publish(session).await?;
        let mut attrs = self
            .deferred
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&self.path))
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
        let upload = match self.upload.take() {
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
        upload.close().await.map(|_| ())
    }
}

pub struct DirHandle {
    path: VPath,
    entries: Option<EntryStream>,
}

impl DirHandle {
    pub fn new(path: VPath, entries: EntryStream) -> Self {
        DirHandle {
            path,
            entries: Some(entries),
        }
    }

    fn closed() -> Self {
        DirHandle {
            path: VPath::root(),
            entries: None,
        }
    }

    async fn next_page(&mut self, id: u32, owner: &str) -> Packet {
        let Some(stream) = self.entries.as_mut() else {
            return wire::status(id, StatusCode::Eof, "end of directory");
        };
        let mut files = Vec::new();
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
            wire::status(id, StatusCode::Eof, "end of directory")
        } else {
            Packet::Name(Name { id, files })
        }
    }
}
