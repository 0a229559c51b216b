//! The SFTP request loop of one channel.
//!
//! russh-sftp's own server loop answers one request at a time; wharf reads packets
//! itself so that many requests are in flight at once: requests on a handle go to
//! that handle's task (in order), path requests run concurrently (bounded), and one
//! writer task sends the replies in whatever order they complete, as SFTP allows.
//! The reader never waits for the network (see `flow.rs`): however many requests
//! a client keeps in flight, they are served or flow-controlled by their bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use russh_sftp::protocol::{
    Attrs, ExtendedReply, File, FileAttributes, Handle as HandleReply, Name, OpenFlags, Packet,
    StatusCode, Version,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Mutex, Semaphore};
use tokio::task::JoinHandle;

use super::flow::{Charge, Flow, Replies};
use super::handles::{
    self, Deferred, DirHandle, Existing, Handle, HandleReq, ReadHandle, WriteHandle,
};
use super::wire;
use crate::error::{Error, ErrorKind, Result};
use crate::session::Session;
use crate::vfs::VPath;

/// Path requests of one channel running at the same time.
const MAX_PARALLEL: usize = 32;
/// After the client ended its side, how long queued replies may still take.
const GRACE: Duration = Duration::from_secs(5);
/// The type byte of SSH_FXP_WRITE: its data is charged to the write budget.
const FXP_WRITE: u8 = 6;

/// A request for one handle with what it costs until answered.
pub type Queued = (HandleReq, Charge);

struct Channel {
    session: Arc<Session>,
    handles: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
    next_handle: AtomicU64,
    max_handles: usize,
    out: Replies,
    /// Open uploads of this channel, by path, with SETSTATs waiting for them.
    uploads: Deferred,
}

/// Serves one SFTP subsystem until the client closes it, and hands the stream back
/// so the caller can end the channel in order (`None` when the connection is gone
/// or the client stopped reading). `gone` turns true when the SSH connection
/// ended. Open uploads that were not closed are discarded (never committed) and
/// audited as interrupted when this returns.
pub async fn run<S>(
    stream: S,
    session: Arc<Session>,
    max_handles: usize,
    mut gone: watch::Receiver<bool>,
    budget: crate::budget::Budget,
) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // The write half is never shut down here: that would send EOF, and clients may
    // close the channel on EOF before the exit status (sent by the caller) arrives.
    let (mut rd, mut wr) = tokio::io::split(stream);
    let flow = Flow::new(budget);
    let (out, mut queued) = Replies::new(flow.clone());
    let writer_flow = flow.clone();
    let (stop, mut stopped) = watch::channel(false);
    let writer = tokio::spawn(async move {
        while let Some(reply) = queued.recv().await {
            let written = tokio::select! {
                r = wr.write_all(&reply.bytes) => r.is_ok(),
                _ = stopped.wait_for(|s| *s) => false,
            };
            if !written {
                // Nobody takes replies any more: drop them until every task that
                // could send one has ended, so their outcomes are audited first.
                writer_flow.close();
                while queued.recv().await.is_some() {}
                return None;
            }
            writer_flow.sent(reply);
        }
        Some(wr)
    });
    let chan = Arc::new(Channel {
        session,
        handles: Mutex::new(HashMap::new()),
        next_handle: AtomicU64::new(1),
        max_handles,
        out,
        uploads: Deferred::default(),
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
        let mut raw = body.clone();
        let packet = match Packet::try_from(&mut raw) {
            Ok(p) => p,
            Err(_) => {
                // Unknown or malformed: answer by id when there is one (RFC draft 02, 7).
                if let Some(id) = request_id(&body) {
                    chan.out.send(wire::status(
                        id,
                        StatusCode::OpUnsupported,
                        "unsupported request",
                    ));
                }
                continue;
            }
        };
        let id = packet.get_request_id();
        match route(packet) {
            Route::Handle(handle, req) => chan.to_handle(&handle, req, id, charge).await,
            Route::Path(packet) => {
                if paths.send((packet, charge)).is_err() {
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
    finish(writer, flow, stop, gone)
        .await
        .map(|wr| rd.unsplit(wr))
}

/// Lets the replies still queued go out, unless the connection is gone or the
/// client does not take them within [`GRACE`]: then every wait of the channel ends
/// at once, so handle tasks finish (and audit) instead of waiting forever. Returns
/// when every task of the channel has ended.
async fn finish<W>(
    mut writer: JoinHandle<Option<W>>,
    flow: Arc<Flow>,
    stop: watch::Sender<bool>,
    mut gone: watch::Receiver<bool>,
) -> Option<W> {
    tokio::select! {
        w = &mut writer => return w.ok().flatten(),
        _ = gone.wait_for(|g| *g) => {}
        _ = tokio::time::sleep(GRACE) => {}
    }
    flow.close();
    let _ = stop.send(true);
    writer.await.ok().flatten()
}

/// Runs path requests, [`MAX_PARALLEL`] at a time, in arrival order; the reader
/// only queues them, so a slow storage call never stops it.
async fn run_paths(chan: Arc<Channel>, mut rx: mpsc::UnboundedReceiver<(Packet, Charge)>) {
    let parallel = Arc::new(Semaphore::new(MAX_PARALLEL));
    while let Some((packet, charge)) = rx.recv().await {
        let Ok(permit) = parallel.clone().acquire_owned().await else {
            break;
        };
        let chan = chan.clone();
        tokio::spawn(async move {
            let reply = chan.request(packet).await;
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
                data: w.data,
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
        Packet::Close(c) => (c.handle, HandleReq::Close { id: c.id }),
        Packet::Extended(e) if e.request == "fsync@openssh.com" => {
            match ssh_string(&mut Bytes::from(e.data.clone())) {
                Some(handle) => (handle, HandleReq::Ack { id: e.id }),
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
    async fn to_handle(&self, handle: &str, req: HandleReq, id: u32, charge: Charge) {
        let closing = matches!(req, HandleReq::Close { .. });
        let tx = {
            let mut handles = self.handles.lock().await;
            if closing {
                handles.remove(handle)
            } else {
                handles.get(handle).cloned()
            }
        };
        match tx {
            Some(tx) => {
                if tx.send((req, charge)).is_err() {
                    self.out
                        .send(wire::status(id, StatusCode::Failure, "handle is gone"));
                }
            }
            None => {
                self.out
                    .send(wire::status(id, StatusCode::Failure, "invalid handle"));
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
        handles.insert(name.clone(), tx);
        tokio::spawn(handles::serve(
            handle,
            self.session.clone(),
            rx,
            self.out.clone(),
        ));
        Ok(name)
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
                attrs: wire::attrs(&s.stat(&VPath::parse(&r.path)?).await?, owner),
            }),
            Packet::Lstat(r) => Packet::Attrs(Attrs {
                id: r.id,
                attrs: wire::attrs(&s.stat(&VPath::parse(&r.path)?).await?, owner),
            }),
            Packet::SetStat(r) => {
                let path = VPath::parse(&r.path)?;
                let attrs = wire::set_attrs(&r.attrs)?;
                let uploading = self.uploads.lock().is_ok_and(|u| u.contains_key(&path));
                if uploading {
                    // Not published yet: the upload applies it when it closes.
                    if s.check_set_attrs(&path, &attrs).await? {
                        if let Some(p) = self
                            .uploads
                            .lock()
                            .ok()
                            .as_mut()
                            .and_then(|u| u.get_mut(&path))
                        {
                            p.merge(attrs);
                        }
                    }
                } else {
                    s.set_attrs(&path, &attrs).await?;
                }
                wire::ok(r.id)
            }
            Packet::OpenDir(r) => {
                let path = VPath::parse(&r.path)?;
                let entries = s.list(&path).await?;
                let handle = self
                    .register(Handle::Dir(DirHandle::new(path, entries)))
                    .await?;
                Packet::Handle(HandleReply { id: r.id, handle })
            }
            Packet::Open(r) => {
                let path = VPath::parse(&r.filename)?;
                let handle = self.open(&path, r.pflags).await?;
                let handle = self.register(handle).await?;
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
        if current.is_some() && flags.contains(OpenFlags::CREATE | OpenFlags::EXCLUDE) {
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
            self.uploads.clone(),
        ))))
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

fn unsupported(id: u32, what: &str) -> Packet {
    wire::status(
        id,
        StatusCode::OpUnsupported,
        &format!("{what} is not supported"),
    )
}

fn version() -> Version {
    let mut v = Version::new();
    for (name, ver) in [
        ("posix-rename@openssh.com", "1"),
        ("fsync@openssh.com", "1"),
        ("limits@openssh.com", "1"),
    ] {
        v.extensions.insert(name.to_string(), ver.to_string());
    }
    v
}
