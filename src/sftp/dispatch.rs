//! The SFTP request loop of one channel.
//!
//! russh-sftp's own server loop answers one request at a time; wharf reads packets
//! itself so that many requests are in flight at once: requests on a handle go to
//! that handle's task (in order), path requests run concurrently (bounded), and one
//! writer task sends the replies in whatever order they complete, as SFTP allows.
//! The reader never waits for the network (see `flow.rs`): however many requests
//! a client keeps in flight, they are served or flow-controlled by their bytes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{StreamExt as _, TryStreamExt as _};
use russh_sftp::protocol::{
    Attrs, ExtendedReply, File, FileAttributes, Handle as HandleReply, Name, OpenFlags, Packet,
    Version,
};
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, watch, Mutex, Semaphore};
use tokio::task::JoinHandle;

use super::closes::{CloseGuard, Closes};
use super::flow::{Charge, Flow, Replies};
use super::handles::{
    self, Deferred, DirHandle, Existing, Handle, HandleReq, Queued, ReadHandle, WriteHandle,
};
use super::wire;
use crate::error::{Error, ErrorKind, Result};
use crate::reply::SftpCode;
use crate::session::Session;
use crate::vfs::VPath;

/// Path requests of one channel running at the same time.
const MAX_PARALLEL: usize = 32;
/// After the client ended its side, how long queued replies may still take.
const GRACE: Duration = Duration::from_secs(5);
/// The type byte of SSH_FXP_WRITE: its data is charged to the write budget.
const FXP_WRITE: u8 = wire::FXP_WRITE;

struct Channel {
    session: Arc<Session>,
    /// Open handles: their task's queue, and what they are.
    handles: Mutex<HashMap<String, (mpsc::UnboundedSender<Queued>, Kind)>>,
    next_handle: AtomicU64,
    max_handles: usize,
    symlinks: super::Symlinks,
    out: Replies,
    /// Open uploads of this channel, by path, with SETSTATs waiting for them.
    uploads: Deferred,
    /// Opens for writing and closes of uploads in progress, by sequence number: a
    /// path request runs only after every such request that arrived before it has
    /// ended (OpenSSH answers in order; sshfs sends LSTAT right behind the OPEN
    /// that creates a file, and renames a file right after closing it).
    closes: Arc<Closes>,
}

/// What a handle name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A download or a directory.
    Other,
    /// A file open for writing.
    Write,
    /// A file opened for reading while this channel writes it: its requests go
    /// to the writing handle, which reads what was written (as a file on disk).
    Alias,
}

/// Where one channel's replies go. The SSH channel takes owned bytes, so a READ
/// reply's data reaches russh's packet writer without a copy (through
/// `AsyncWrite` every write was copied into a new buffer first: 6% of a
/// download's CPU with many sessions).
pub trait ReplySink: Send + 'static {
    fn send(&mut self, bytes: Bytes) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Serves one SFTP subsystem until the client closes it and every task of the
/// channel has ended; the caller then ends the channel (exit status, EOF,
/// CLOSE). `gone` turns true when the SSH connection ended. Open uploads that
/// were not closed are discarded (never committed) and audited as interrupted
/// when this returns.
pub async fn run<R, W>(
    (mut rd, mut wr): (R, W),
    session: Arc<Session>,
    (max_handles, symlinks): (usize, super::Symlinks),
    mut gone: watch::Receiver<bool>,
    budget: crate::budget::Budget,
) where
    R: AsyncRead + Send + Unpin,
    W: ReplySink,
{
    // The sink is never shut down here: that would send EOF, and clients may
    // close the channel on EOF before the exit status (sent by the caller) arrives.
    let flow = Flow::new(budget);
    let (out, mut queued) = Replies::new(flow.clone());
    let writer_flow = flow.clone();
    let (stop, mut stopped) = watch::channel(false);
    let writer = tokio::spawn(async move {
        while let Some(reply) = queued.recv().await {
            let written = tokio::select! {
                r = async {
                    wr.send(reply.bytes.clone()).await?;
                    if !reply.body.is_empty() {
                        wr.send(reply.body.clone()).await?;
                    }
                    Ok::<_, std::io::Error>(())
                } => r.is_ok(),
                _ = stopped.wait_for(|s| *s) => false,
            };
            if !written {
                // Nobody takes replies any more: drop them until every task that
                // could send one has ended, so their outcomes are audited first.
                writer_flow.close();
                while queued.recv().await.is_some() {}
                return;
            }
            writer_flow.sent(reply);
        }
    });
    let chan = Arc::new(Channel {
        session,
        handles: Mutex::new(HashMap::new()),
        next_handle: AtomicU64::new(1),
        max_handles,
        symlinks,
        out,
        uploads: Deferred::default(),
        closes: Arc::default(),
    });
    let (paths, path_rx) = mpsc::unbounded_channel();
    tokio::spawn(run_paths(chan.clone(), path_rx));
    loop {
        let body = match wire::read_packet(&mut rd).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "SFTP stream ended");
                break;
            }
        };
        let write = body.first() == Some(&FXP_WRITE);
        let charge = tokio::select! {
            c = flow.admit(body.len() + 4, write) => c,
            _ = gone.wait_for(|g| *g) => None,
        };
        let Some(charge) = charge else {
            tracing::warn!(
                user = %chan.session.user().name,
                "SFTP client stopped reading its replies; ending the channel"
            );
            break;
        };
        if write {
            // The data stays a slice of the packet as read (no copy on its way
            // to the file); a malformed WRITE is answered by the general parser.
            if let Some(w) = wire::Write::parse(&body) {
                let req = HandleReq::Write {
                    id: w.id,
                    offset: w.offset,
                    data: w.data,
                };
                chan.to_handle(&w.handle, req, w.id, charge).await;
                continue;
            }
        }
        let mut raw = body.clone();
        let packet = match Packet::try_from(&mut raw) {
            Ok(p) => p,
            Err(_) => {
                // Unknown or malformed: answer by id when there is one (RFC draft 02, 7).
                if let Some(id) = request_id(&body) {
                    chan.out.send(wire::plain(id, SftpCode::OpUnsupported));
                }
                continue;
            }
        };
        let id = packet.get_request_id();
        match route(packet) {
            Route::Handle(handle, req) => chan.to_handle(&handle, req, id, charge).await,
            Route::Path(Packet::SetStat(r)) if chan.upload_handle(&r.path).is_some() => {
                // A file this channel is writing: its handle applies the change
                // (a new size at once), in order with its writes.
                let handle = chan.upload_handle(&r.path).expect("checked");
                let req = HandleReq::SetStat {
                    id: r.id,
                    attrs: r.attrs,
                };
                chan.to_handle(&handle, req, id, charge).await
            }
            Route::Path(packet) => {
                let seen = chan.closes.seen();
                let fence = match &packet {
                    Packet::Open(o)
                        if o.pflags.intersects(OpenFlags::WRITE | OpenFlags::APPEND) =>
                    {
                        Some(chan.closes.begin())
                    }
                    _ => None,
                };
                if paths.send((packet, charge, seen, fence)).is_err() {
                    break;
                }
            }
        }
    }
    // Dropping the senders ends the handle tasks once their queued requests are
    // answered; their uploads are discarded.
    drop(paths);
    chan.handles.lock().await.clear();
    drop(chan);
    finish(writer, flow, stop, gone).await
}

/// Lets the replies still queued go out, unless the connection is gone or the
/// client does not take them within [`GRACE`]: then every wait of the channel ends
/// at once, so handle tasks finish (and audit) instead of waiting forever. Returns
/// when every task of the channel has ended.
async fn finish(
    mut writer: JoinHandle<()>,
    flow: Arc<Flow>,
    stop: watch::Sender<bool>,
    mut gone: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = &mut writer => return,
        _ = gone.wait_for(|g| *g) => {}
        _ = tokio::time::sleep(GRACE) => {}
    }
    flow.close();
    let _ = stop.send(true);
    let _ = writer.await;
}

/// Runs path requests, [`MAX_PARALLEL`] at a time, in arrival order; the reader
/// only queues them, so a slow storage call never stops it.
async fn run_paths(
    chan: Arc<Channel>,
    mut rx: mpsc::UnboundedReceiver<(Packet, Charge, u64, Option<CloseGuard>)>,
) {
    let parallel = Arc::new(Semaphore::new(MAX_PARALLEL));
    while let Some((packet, charge, seen, fence)) = rx.recv().await {
        let Ok(permit) = parallel.clone().acquire_owned().await else {
            break;
        };
        let chan = chan.clone();
        tokio::spawn(async move {
            chan.closes.wait(seen).await;
            let reply = chan.request(packet).await;
            drop(fence);
            chan.out.send(reply);
            drop(charge);
            drop(permit);
        });
    }
}

/// The request id of a raw packet body (type byte, then the id).
fn request_id(body: &Bytes) -> Option<u32> {
    let mut b = body.clone();
    (b.remaining() >= 5).then(|| {
        b.advance(1);
        b.get_u32()
    })
}

/// Where a request goes.
enum Route {
    /// To the task of this handle, in order.
    Handle(String, HandleReq),
    /// To a path operation, run concurrently.
    Path(Packet),
}

/// Splits off handle-bound requests (with their handle). Takes the packet by value
/// so WRITE data is moved, not copied.
fn route(packet: Packet) -> Route {
    let (handle, req) = match packet {
        Packet::Read(r) => (
            r.handle,
            HandleReq::Read {
                id: r.id,
                offset: r.offset,
                len: r.len,
            },
        ),
        Packet::Write(w) => (
            w.handle,
            HandleReq::Write {
                id: w.id,
                offset: w.offset,
                data: Bytes::from(w.data),
            },
        ),
        Packet::ReadDir(r) => (r.handle, HandleReq::ReadDir { id: r.id }),
        Packet::Fstat(f) => (f.handle, HandleReq::Fstat { id: f.id }),
        Packet::FSetStat(f) => (
            f.handle,
            HandleReq::SetStat {
                id: f.id,
                attrs: f.attrs,
            },
        ),
        Packet::Close(c) => (
            c.handle,
            HandleReq::Close {
                id: c.id,
                guard: None,
            },
        ),
        Packet::Extended(e) if e.request == "fsync@openssh.com" => {
            match ssh_string(&mut Bytes::from(e.data.clone())) {
                Some(handle) => (handle, HandleReq::Ack { id: e.id }),
                None => return Route::Path(Packet::Extended(e)),
            }
        }
        Packet::Extended(e) if e.request == "fstatvfs@openssh.com" => {
            match ssh_string(&mut Bytes::from(e.data.clone())) {
                Some(handle) => (handle, HandleReq::Statvfs { id: e.id }),
                None => return Route::Path(Packet::Extended(e)),
            }
        }
        other => return Route::Path(other),
    };
    Route::Handle(handle, req)
}

/// Reads one SSH `string` (u32 length + bytes) as UTF-8.
fn ssh_string(b: &mut Bytes) -> Option<String> {
    if b.remaining() < 4 {
        return None;
    }
    let len = b.get_u32() as usize;
    if b.remaining() < len {
        return None;
    }
    String::from_utf8(b.split_to(len).to_vec()).ok()
}

impl Channel {
    /// The handle writing `path` in this channel, if any.
    fn upload_handle(&self, path: &str) -> Option<String> {
        let path = VPath::parse(path).ok()?;
        self.uploads
            .lock()
            .ok()?
            .get(&path)
            .and_then(|u| u.handle.clone())
    }

    async fn to_handle(&self, handle: &str, mut req: HandleReq, id: u32, charge: Charge) {
        let closing = matches!(req, HandleReq::Close { .. });
        let tx = {
            let mut handles = self.handles.lock().await;
            if closing {
                handles.remove(handle)
            } else {
                handles.get(handle).cloned()
            }
        };
        match (&mut req, &tx) {
            (HandleReq::Close { guard, .. }, Some((_, Kind::Write))) => {
                *guard = Some(self.closes.begin());
            }
            (HandleReq::Close { .. }, Some((_, Kind::Alias))) => {
                // Closing the second name closes nothing of the upload.
                self.out.send(wire::ok(id));
                return;
            }
            _ => {}
        }
        match tx.map(|(tx, _)| tx) {
            Some(tx) => {
                if tx.send((req, charge)).is_err() {
                    self.out.send(wire::plain(id, SftpCode::Failure));
                }
            }
            None => {
                self.out.send(wire::plain(id, SftpCode::Failure));
            }
        }
    }

    async fn register(&self, handle: Handle) -> Result<String> {
        let mut handles = self.handles.lock().await;
        if handles.len() >= self.max_handles {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("too many open handles (limit {})", self.max_handles),
            ));
        }
        let name = self.next_handle.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let kind = match handle {
            Handle::Write(_) => Kind::Write,
            _ => Kind::Other,
        };
        handles.insert(name.clone(), (tx, kind));
        tokio::spawn(handles::serve(
            handle,
            self.session.clone(),
            rx,
            self.out.clone(),
        ));
        Ok(name)
    }

    /// A second name for the handle writing `path` in this channel, for an OPEN
    /// that only reads it; `None` when nothing here writes it.
    async fn alias(&self, path: &VPath) -> Result<Option<String>> {
        let Some(writer) = self
            .uploads
            .lock()
            .ok()
            .and_then(|u| u.get(path)?.handle.clone())
        else {
            return Ok(None);
        };
        let mut handles = self.handles.lock().await;
        let Some((tx, _)) = handles.get(&writer).cloned() else {
            return Ok(None);
        };
        if handles.len() >= self.max_handles {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("too many open handles (limit {})", self.max_handles),
            ));
        }
        self.session.check_read(path).await?;
        let name = self.next_handle.fetch_add(1, Ordering::Relaxed).to_string();
        handles.insert(name.clone(), (tx, Kind::Alias));
        Ok(Some(name))
    }

    async fn request(&self, packet: Packet) -> Packet {
        let id = packet.get_request_id();
        match self.answer(packet).await {
            Ok(reply) => reply,
            Err(e) => wire::error(id, &e),
        }
    }

    async fn answer(&self, packet: Packet) -> Result<Packet> {
        let s = &self.session;
        let owner = s.user().name.as_str();
        Ok(match packet {
            Packet::Init(_) => Packet::Version(version()),
            Packet::RealPath(r) => {
                let path = VPath::parse(&r.path)?;
                Packet::Name(Name {
                    id: r.id,
                    files: vec![File {
                        filename: path.to_string(),
                        longname: path.to_string(),
                        attrs: FileAttributes::empty(),
                    }],
                })
            }
            Packet::Stat(r) => Packet::Attrs(Attrs {
                id: r.id,
                attrs: wire::attrs(&self.stat(&VPath::parse(&r.path)?).await?, owner),
            }),
            Packet::Lstat(r) => Packet::Attrs(Attrs {
                id: r.id,
                attrs: wire::attrs(&self.lstat(&VPath::parse(&r.path)?).await?, owner),
            }),
            Packet::SetStat(r) => {
                let path = VPath::parse(&r.path)?;
                let attrs = wire::set_attrs(&r.attrs)?;
                let uploading = self.uploads.lock().is_ok_and(|u| u.contains_key(&path));
                if uploading {
                    // Not published yet: the upload applies it when it closes.
                    let (apply, answer) = s.check_set_attrs(&path, &attrs).await;
                    if let Some(attrs) = apply {
                        if let Some(p) = self
                            .uploads
                            .lock()
                            .ok()
                            .as_mut()
                            .and_then(|u| u.get_mut(&path))
                        {
                            p.attrs.merge(attrs);
                        }
                    }
                    answer?;
                } else {
                    s.set_attrs(&path, &attrs).await?;
                }
                wire::ok(r.id)
            }
            Packet::OpenDir(r) => {
                let path = VPath::parse(&r.path)?;
                let mut entries = s.list(&path).await?;
                if self.symlinks != super::Symlinks::Confined {
                    // Links are not shown as links where they cannot be read.
                    entries = entries
                        .map_ok(|mut e: crate::vfs::Entry| {
                            e.link = None;
                            e
                        })
                        .boxed();
                }
                let dots = self.dots(&path).await;
                let handle = self
                    .register(Handle::Dir(DirHandle::new(path, entries, dots)))
                    .await?;
                Packet::Handle(HandleReply { id: r.id, handle })
            }
            Packet::Open(r) => {
                let path = VPath::parse(&r.filename)?;
                let read_only = !r.pflags.intersects(OpenFlags::WRITE | OpenFlags::APPEND);
                if read_only && self.upload_handle(&r.filename).is_some() {
                    if r.pflags.contains(OpenFlags::CREATE | OpenFlags::EXCLUDE) {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            format!("{path} already exists"),
                        ));
                    }
                    if let Some(handle) = self.alias(&path).await? {
                        return Ok(Packet::Handle(HandleReply { id: r.id, handle }));
                    }
                }
                let handle = self.open(&path, r.pflags).await?;
                let writing = matches!(handle, Handle::Write(_));
                let handle = self.register(handle).await?;
                if writing {
                    if let Some(open) = self
                        .uploads
                        .lock()
                        .ok()
                        .as_mut()
                        .and_then(|u| u.get_mut(&path))
                    {
                        open.handle = Some(handle.clone());
                    }
                }
                Packet::Handle(HandleReply { id: r.id, handle })
            }
            Packet::Remove(r) => {
                s.delete(&VPath::parse(&r.filename)?).await?;
                wire::ok(r.id)
            }
            Packet::MkDir(r) => {
                s.mkdir(&VPath::parse(&r.path)?).await?;
                wire::ok(r.id)
            }
            Packet::RmDir(r) => {
                s.rmdir(&VPath::parse(&r.path)?).await?;
                wire::ok(r.id)
            }
            Packet::Rename(r) => {
                // SFTP v3: an existing target is an error.
                s.rename(
                    &VPath::parse(&r.oldpath)?,
                    &VPath::parse(&r.newpath)?,
                    false,
                )
                .await?;
                wire::ok(r.id)
            }
            Packet::ReadLink(r) if self.symlinks == super::Symlinks::Confined => {
                let text = s.readlink(&VPath::parse(&r.path)?).await?;
                Packet::Name(Name {
                    id: r.id,
                    files: vec![File {
                        filename: text.clone(),
                        longname: text,
                        attrs: FileAttributes::empty(),
                    }],
                })
            }
            // OpenSSH's order: the target first, then the new link (the draft's
            // names are swapped in russh-sftp's struct, as in OpenSSH's server).
            Packet::Symlink(r) if self.symlinks == super::Symlinks::Confined => {
                s.symlink(&r.linkpath, &VPath::parse(&r.targetpath)?)
                    .await?;
                wire::ok(r.id)
            }
            Packet::ReadLink(r) => unsupported(r.id, "symbolic links"),
            Packet::Symlink(r) => unsupported(r.id, "symbolic links"),
            Packet::Extended(e) => self.extended(e.id, &e.request, e.data).await?,
            other => unsupported(other.get_request_id(), "this request"),
        })
    }

    async fn open(&self, path: &VPath, flags: OpenFlags) -> Result<Handle> {
        let s = &self.session;
        if !flags.intersects(OpenFlags::WRITE | OpenFlags::APPEND) {
            return Ok(Handle::Read(Box::new(ReadHandle::new(
                s.open_read(path).await?,
            ))));
        }
        let current = match s.stat(path).await {
            Ok(e) => Some(e),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => None,
            Err(e) => return Err(e),
        };
        let uploading = self.uploads.lock().is_ok_and(|u| u.contains_key(path));
        if (current.is_some() || uploading)
            && flags.contains(OpenFlags::CREATE | OpenFlags::EXCLUDE)
        {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{path} already exists"),
            ));
        }
        if current.is_none() && !flags.contains(OpenFlags::CREATE) {
            return Err(Error::not_found(format!("{path}: no such file")));
        }
        let existing = match &current {
            Some(e) if flags.contains(OpenFlags::APPEND) => Existing::Append { size: e.size },
            Some(e) if !flags.contains(OpenFlags::TRUNCATE) => Existing::Resume { size: e.size },
            _ => Existing::Replace,
        };
        // Refusals (permission, missing directory) come now, at OPEN; the upload
        // itself starts at the first write, when a resume's offset is known.
        s.check_create(path, current.as_ref()).await?;
        Ok(Handle::Write(Box::new(WriteHandle::new(
            path.clone(),
            existing,
            s.random_writes(path),
            self.uploads.clone(),
        ))))
    }

    /// `.` and `..` of a listed directory, with their attributes, as OpenSSH
    /// lists them (`..` of the home is the home: the client's root). Left out if
    /// they cannot be stated.
    async fn dots(&self, dir: &VPath) -> Vec<File> {
        let owner = self.session.user().name.as_str();
        let parent = dir.parent().unwrap_or_else(VPath::root);
        let mut out = Vec::with_capacity(2);
        for (name, path) in [(".", dir), ("..", &parent)] {
            if let Ok(entry) = self.session.stat(path).await {
                let mut file = wire::file(&entry, owner);
                let shown = entry.name();
                if let Some(head) = file.longname.strip_suffix(shown) {
                    file.longname = format!("{head}{name}");
                }
                file.filename = name.to_string();
                out.push(file);
            }
        }
        out
    }

    /// STAT and LSTAT: a file this channel is writing exists with the size
    /// written so far, as a file written in place would (sshfs stats a file
    /// right after creating it).
    async fn stat(&self, path: &VPath) -> Result<crate::vfs::Entry> {
        let open = self
            .uploads
            .lock()
            .ok()
            .and_then(|u| u.get(path).map(|o| (o.size, o.existed, o.attrs.mode)));
        let Some((size, existed, mode)) = open else {
            return self.session.stat(path).await;
        };
        let old = if existed {
            self.session.stat(path).await.ok()
        } else {
            None
        };
        Ok(crate::vfs::Entry {
            path: path.clone(),
            kind: crate::vfs::EntryKind::File,
            size,
            modified: Some(std::time::SystemTime::now()),
            mode: mode.or(old.and_then(|o| o.mode)),
            link: None,
            etag: None,
        })
    }

    /// LSTAT: a symlink as one (its own attributes, as OpenSSH) where
    /// `[sftp] symlinks` lets clients read links; otherwise as STAT.
    async fn lstat(&self, path: &VPath) -> Result<crate::vfs::Entry> {
        let uploading = self.uploads.lock().is_ok_and(|u| u.contains_key(path));
        if uploading || self.symlinks != super::Symlinks::Confined {
            return self.stat(path).await;
        }
        self.session.lstat(path).await
    }

    async fn extended(&self, id: u32, request: &str, data: Vec<u8>) -> Result<Packet> {
        let mut data = Bytes::from(data);
        Ok(match request {
            "posix-rename@openssh.com" => {
                let (Some(from), Some(to)) = (ssh_string(&mut data), ssh_string(&mut data)) else {
                    return Err(Error::invalid("malformed posix-rename request"));
                };
                self.session
                    .rename(&VPath::parse(&from)?, &VPath::parse(&to)?, true)
                    .await?;
                wire::ok(id)
            }
            "hardlink@openssh.com" => {
                let (Some(from), Some(to)) = (ssh_string(&mut data), ssh_string(&mut data)) else {
                    return Err(Error::invalid("malformed hardlink request"));
                };
                self.session
                    .hardlink(&VPath::parse(&from)?, &VPath::parse(&to)?)
                    .await?;
                wire::ok(id)
            }
            "statvfs@openssh.com" => {
                let Some(path) = ssh_string(&mut data) else {
                    return Err(Error::invalid("malformed statvfs request"));
                };
                let st = self.session.statvfs(&VPath::parse(&path)?).await?;
                wire::statvfs(id, &st)
            }
            "limits@openssh.com" => {
                let mut reply = Vec::with_capacity(32);
                for v in [
                    wire::MAX_PACKET as u64,
                    wire::MAX_DATA as u64,
                    wire::MAX_DATA as u64,
                    self.max_handles as u64,
                ] {
                    reply.extend_from_slice(&v.to_be_bytes());
                }
                Packet::ExtendedReply(ExtendedReply { id, data: reply })
            }
            other => unsupported(id, other),
        })
    }
}

/// OpenSSH's answer to a request it does not know: "Operation unsupported".
fn unsupported(id: u32, what: &str) -> Packet {
    tracing::debug!(request = what, "unsupported SFTP request");
    wire::plain(id, SftpCode::OpUnsupported)
}

fn version() -> Version {
    let mut v = Version::new();
    for (name, ver) in [
        ("posix-rename@openssh.com", "1"),
        ("fsync@openssh.com", "1"),
        ("limits@openssh.com", "1"),
        ("statvfs@openssh.com", "2"),
        ("fstatvfs@openssh.com", "2"),
        ("hardlink@openssh.com", "1"),
    ] {
        v.extensions.insert(name.to_string(), ver.to_string());
    }
    v
}
