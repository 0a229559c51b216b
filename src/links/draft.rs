//! A send link while its copies are being made. The record is a draft (visitors
//! get "not ready"), files stream into the transfer store one by one, through
//! the system's Session over it (which hashes them on the way, as every
//! upload), and only `finish` activates the link. Every other ending — an error,
//! `abandon`, or the draft simply being dropped because the client that was
//! uploading went away — removes the record and every copy made so far.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use tokio_util::io::ReaderStream;

use super::{entry_name, remove_copies, Created, LinkService, Source};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::store::{Link, LinkChange, LinkFile};
use crate::vfs::VPath;

/// Drafts being filled by this process. The sweep of abandoned browser drafts
/// skips them, however long their copies take.
#[derive(Default)]
pub(super) struct Copying(std::sync::Mutex<std::collections::HashSet<i64>>);

impl Copying {
    fn set(&self, id: i64, on: bool) {
        let mut ids = self.0.lock().expect("copying lock");
        if on {
            ids.insert(id);
        } else {
            ids.remove(&id);
        }
    }

    pub(super) fn contains(&self, id: i64) -> bool {
        self.0.lock().expect("copying lock").contains(&id)
    }
}

pub struct Draft<'a> {
    service: &'a LinkService,
    /// The creator's session: reads their files (audited as their downloads).
    session: Session,
    /// The system's session over the transfer store: writes the copies.
    store: Session,
    link: Link,
    /// The URL's token, known in clear only until the link is finished.
    token: String,
    /// `/<public id>` in the transfer store.
    dir: VPath,
    names: Vec<String>,
    /// Finished or abandoned: nothing is left for the drop to clean up.
    settled: bool,
    /// Keeps the draft from the sweep of every node while it is copied into
    /// (lease `lock:draft:<id>`; `None` if the store could not be reached).
    _held: Option<crate::cluster::LockGuard>,
}

/// The cluster lock that keeps a draft from every node's sweep.
pub(super) fn lock_key(link_id: i64) -> String {
    format!("draft:{link_id}")
}

impl<'a> Draft<'a> {
    pub(super) async fn start(
        service: &'a LinkService,
        session: Session,
        link: Link,
        token: String,
    ) -> Result<Draft<'a>> {
        let dir = VPath::root().join(&link.public_id)?;
        service.copying.set(link.id, true);
        // A new draft's id is unique: the lease is free unless the store fails.
        let held = crate::cluster::lock(&service.db, "links", &lock_key(link.id))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not mark a draft as being copied for other nodes");
                None
            });
        let draft = Draft {
            service,
            session,
            store: service.transfer_session(),
            link,
            token,
            dir,
            names: Vec::new(),
            settled: false,
            _held: held,
        };
        if let Err(e) = draft.store.mkdir(&draft.dir).await {
            draft.abandon().await;
            return Err(e);
        }
        Ok(draft)
    }

    /// The draft record (its public id names the link in audit rows).
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Copies a local file or a file of the creator's into the link.
    pub async fn add(&mut self, source: &Source) -> Result<()> {
        match source {
            Source::Local(p) => {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| Error::invalid(format!("{} is not a file", p.display())))?;
                let f = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| Error::from(e).context(format!("reading {}", p.display())))?;
                if f.metadata().await?.is_dir() {
                    return Err(Error::invalid(format!("{} is a directory", p.display())));
                }
                let chunks =
                    ReaderStream::with_capacity(f, self.store.buffer_size()).map_err(Error::from);
                self.add_stream(&name, chunks).await.map(drop)
            }
            Source::Stored(p) => {
                let view = VPath::parse(p)?;
                let name = entry_name(&view);
                self.check_name(&name)?;
                let download = self.session.open_read(&view).await?;
                let chunks = download
                    .stream(0..download.size())
                    .await?
                    .inspect_ok(|chunk| download.add_sent(chunk.len() as u64));
                self.add_stream(&name, chunks).await?;
                download.finish(true).await;
                Ok(())
            }
        }
    }

    /// Streams one file named `name` into the link. Memory stays bounded by the
    /// stream's chunks and one storage buffer, whatever the size. On error the
    /// partial copy is discarded (the draft itself stays until abandoned).
    pub async fn add_stream<S>(&mut self, name: &str, chunks: S) -> Result<LinkFile>
    where
        S: Stream<Item = Result<Bytes>>,
    {
        self.check_name(name)?;
        let target = self.dir.join(name)?;
        let mut upload = self.store.create(&target).await?;
        let mut chunks = std::pin::pin!(chunks);
        loop {
            match chunks.try_next().await {
                Ok(Some(chunk)) => upload.write(chunk).await?,
                Ok(None) => break,
                Err(e) => {
                    let _ = upload.abort(e.kind().as_str()).await;
                    return Err(e);
                }
            }
        }
        let (size, sha256) = upload.close().await?;
        let file = LinkFile {
            id: 0,
            name: name.to_string(),
            path: target.to_string(),
            is_dir: false,
            size,
            sha256: Some(sha256),
        };
        let (id, row) = (self.link.id, file.clone());
        self.service
            .db
            .run(move |s| s.link_add_file(id, &row))
            .await?;
        self.names.push(name.to_string());
        Ok(file)
    }

    /// A file name is one plain path segment, not used yet in this link.
    fn check_name(&self, name: &str) -> Result<()> {
        if !crate::vfs::is_plain_name(name) {
            return Err(Error::invalid(format!("{name:?} is not a file name")));
        }
        if self.names.iter().any(|n| n == name) {
            return Err(Error::invalid(format!("two files are named {name:?}")));
        }
        Ok(())
    }

    /// Activates the link (it needs at least one file) and mails its recipients.
    pub async fn finish(mut self) -> Result<Created> {
        if self.names.is_empty() {
            self.abandon().await;
            return Err(Error::invalid("name at least one file to send"));
        }
        let id = self.link.id;
        if let Err(e) = self
            .service
            .db
            .run(move |s| s.link_change(id, &LinkChange::Activate))
            .await
        {
            self.abandon().await;
            return Err(e);
        }
        self.settled = true;
        let link = self.service.find(&self.link.public_id).await?;
        Ok(self.service.announce(link, &self.token).await)
    }

    /// Removes the draft record and every copy made so far.
    pub async fn abandon(mut self) {
        self.settled = true;
        discard(
            self.service.db.clone(),
            self.store.clone(),
            self.link.clone(),
        )
        .await;
    }
}

impl Drop for Draft<'_> {
    fn drop(&mut self) {
        self.service.copying.set(self.link.id, false);
        if self.settled {
            return;
        }
        // Dropped mid-way (the uploading client went away): clean up in the
        // background, since a drop cannot wait.
        self.service.audit.spawn(discard(
            self.service.db.clone(),
            self.store.clone(),
            self.link.clone(),
        ));
    }
}

async fn discard(db: crate::store::Db, transfers: Session, link: Link) {
    if let Err(e) = remove_copies(&db, &transfers, &link).await {
        tracing::warn!(link = %link.public_id, error = %e, "removing the copies of an unfinished link failed");
    }
    let id = link.id;
    if let Err(e) = db.run(move |s| s.link_delete(id)).await {
        tracing::warn!(link = %link.public_id, error = %e, "removing an unfinished link failed");
    }
}
