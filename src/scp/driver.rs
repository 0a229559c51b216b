//! The SCP session driver: the sink (`scp -t`, the client uploads) and the source
//! (`scp -f`, it downloads) of the legacy protocol, over the Session layer, so
//! permissions, the home jail, atomic uploads and audit rows are SFTP's own.
//!
//! Files stream in chunks both ways; memory stays bounded whatever their size.
//! Errors reach the client as SCP error records with the public-reply text only.

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use super::proto::{self, Mode, Record, Scp, Times, Word};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Session, Upload};
use crate::vfs::{Entry, VPath};

/// Bytes read from the client per storage write.
const CHUNK: usize = 256 * 1024;

/// The channel: buffered reads, writes passed through.
pub type Io<S> = tokio::io::BufReader<S>;

/// Runs one scp command; returns the exit status (0: everything went through).
pub async fn run<S>(scp: &Scp, files: &Session, io: &mut Io<S>) -> u32
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut t = Transfer {
        files,
        io,
        scp,
        failed: false,
    };
    let res = match &scp.mode {
        Mode::Sink(target) => t.sink(target).await,
        Mode::Source(paths) => t.source(paths).await,
    };
    if let Err(e) = res {
        // A fatal error: told to the client if the channel still carries it.
        crate::reply::log("scp", &e);
        let _ = t
            .send(&proto::error_record(crate::reply::text(&e), true))
            .await;
        t.failed = true;
    }
    let _ = t.io.flush().await;
    u32::from(t.failed)
}

struct Transfer<'a, S> {
    files: &'a Session,
    io: &'a mut Io<S>,
    scp: &'a Scp,
    /// Some item failed: the exit status is 1.
    failed: bool,
}

/// What the other side answered to a header or a file's end.
enum Answer {
    Ok,
    /// It reported a problem and skips this item.
    Skip,
}

impl<S> Transfer<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.io.write_all(data).await?;
        Ok(())
    }

    /// Tells the client about a failed item (it goes on with the next one).
    async fn warn(&mut self, name: &str, e: &Error) -> Result<()> {
        crate::reply::log("scp", e);
        self.failed = true;
        let text = format!("{name}: {}", crate::reply::text(e));
        self.send(&proto::error_record(&text, false)).await?;
        self.io.flush().await?;
        Ok(())
    }

    async fn ack(&mut self) -> Result<()> {
        self.send(&[0]).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads the other side's answer: `\0`, or a warning / fatal record.
    async fn answer(&mut self) -> Result<Answer> {
        self.io.flush().await?;
        let mut b = [0u8; 1];
        self.io.read_exact(&mut b).await?;
        match b[0] {
            0 => Ok(Answer::Ok),
            code @ (1 | 2) => {
                let msg = read_line(self.io).await?.unwrap_or_default();
                tracing::debug!(message = %String::from_utf8_lossy(&msg), "scp client reported an error");
                self.failed = true;
                if code == 2 {
                    return Err(Error::new(ErrorKind::InvalidInput, "scp client gave up")
                        .with_public("transfer stopped by the client"));
                }
                Ok(Answer::Skip)
            }
            _ => Err(Error::invalid("protocol error: unexpected answer")),
        }
    }

    // ---- sink: the client uploads -------------------------------------------------

    async fn sink(&mut self, target_raw: &str) -> Result<()> {
        let target = match self.sink_target(target_raw).await {
            Ok(t) => t,
            Err(e) => {
                // Before the first `\0`: the client stops with this message.
                crate::reply::log("scp", &e);
                self.failed = true;
                let text = format!("{target_raw}: {}", crate::reply::text(&e));
                return self.send(&proto::error_record(&text, true)).await;
            }
        };
        let target_is_dir = target.1;
        let target = target.0;
        self.ack().await?;
        // The directories entered with `D` records; the target itself at depth 0.
        let mut dirs: Vec<VPath> = Vec::new();
        // A folder's times are set when it ends (writing into it changes them).
        let mut dir_times: Vec<Option<Times>> = Vec::new();
        let mut times: Option<Times> = None;
        while let Some(line) = read_line(self.io).await? {
            let record = proto::parse_record(&line)?;
            let dest = |name: &str| -> Result<VPath> {
                match dirs.last() {
                    Some(d) => d.join(name),
                    None if target_is_dir => target.join(name),
                    None => Ok(target.clone()),
                }
            };
            match record {
                Record::Times(t) => {
                    times = Some(t);
                    self.ack().await?;
                }
                Record::End => {
                    let Some(dir) = dirs.pop() else {
                        return Err(Error::invalid("protocol error: unbalanced directory end"));
                    };
                    self.keep_times(&dir, dir_times.pop().flatten()).await;
                    self.ack().await?;
                }
                Record::Warning(msg) => {
                    // The client could not read one of its files: it is skipped.
                    tracing::debug!(%msg, "scp client skipped an item");
                    self.failed = true;
                }
                Record::Fatal(msg) => {
                    tracing::debug!(%msg, "scp client stopped");
                    self.failed = true;
                    return Ok(());
                }
                Record::Dir { name, .. } => {
                    if !self.scp.recursive {
                        return Err(Error::invalid("protocol error: directory without -r"));
                    }
                    let path = dest(&name)?;
                    match self.enter_dir(&path).await {
                        Ok(()) => {
                            dir_times.push(times.take());
                            dirs.push(path);
                            self.ack().await?;
                        }
                        Err(e) => self.warn(&name, &e).await?,
                    }
                    times = None;
                }
                Record::File { size, name, .. } => {
                    let path = dest(&name)?;
                    if self.receive_file(&path, &name, size).await? {
                        self.keep_times(&path, times.take()).await;
                    }
                    times = None;
                }
            }
        }
        if !dirs.is_empty() {
            return Err(Error::invalid(
                "protocol error: connection closed inside a directory",
            ));
        }
        Ok(())
    }

    /// `-p` on upload: applies a `T` record's times to what was just written,
    /// through the Session (permission, jail, audit as `setstat`). A refusal
    /// (e.g. storage that keeps no times under `setstat_mode = "refuse"`) is a
    /// warning to the client, as OpenSSH's scp reports a failed utimes.
    async fn keep_times(&mut self, path: &VPath, times: Option<Times>) {
        let Some(t) = times else { return };
        let attrs = crate::vfs::SetAttrs {
            mtime: Some(t.mtime),
            atime: Some(t.atime),
            ..Default::default()
        };
        if let Err(e) = self.files.set_attrs(path, &attrs).await {
            let name = path.file_name().unwrap_or("").to_string();
            let _ = self.warn(&name, &e).await;
        }
    }

    /// The sink's target and whether it is a directory. With `-d` (several
    /// sources) or a trailing `/`, it must be one.
    async fn sink_target(&self, raw: &str) -> Result<(VPath, bool)> {
        let target = proto::resolve(raw)?;
        let found = match self.files.stat(&target).await {
            Ok(e) => Some(e),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let is_dir = found.as_ref().is_some_and(Entry::is_dir);
        if (self.scp.target_is_dir || raw.ends_with('/')) && !is_dir {
            let kind = match found {
                None => ErrorKind::NotFound,
                Some(_) => ErrorKind::NotADirectory,
            };
            return Err(Error::new(kind, format!("scp target {target}")));
        }
        Ok((target, is_dir))
    }

    /// Makes sure `path` is a directory, creating it if it does not exist.
    async fn enter_dir(&self, path: &VPath) -> Result<()> {
        match self.files.stat(path).await {
            Ok(e) if e.is_dir() => Ok(()),
            Ok(_) => Err(Error::new(ErrorKind::NotADirectory, format!("{path}"))),
            Err(e) if e.kind() == ErrorKind::NotFound => self.files.mkdir(path).await,
            Err(e) => Err(e),
        }
    }

    /// One `C` record: the upload starts only if it may (else the client skips the
    /// file), the bytes stream in, and it is committed once the client says the
    /// file was read whole. `Ok(true)`: the file is in place.
    async fn receive_file(&mut self, path: &VPath, name: &str, size: u64) -> Result<bool> {
        let upload = match self.start_upload(path).await {
            Ok(u) => u,
            Err(e) => return self.warn(name, &e).await.map(|()| false),
        };
        self.ack().await?;
        let mut upload = Some(upload);
        let mut write_error: Option<Error> = None;
        let mut left = size;
        while left > 0 {
            // Whole chunks: a short read's buffer would keep its full capacity
            // alive in the storage writer's part buffer.
            let want = left.min(CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            let got = read_full(self.io, &mut buf).await;
            if got < want {
                // The connection ended mid-file: the dropped upload is discarded
                // and audited as interrupted, or with `interrupted_uploads =
                // "keep"` published with every byte that arrived.
                if let (Some(u), true) = (upload.as_mut(), got > 0) {
                    buf.truncate(got);
                    let _ = u.write(Bytes::from(buf)).await;
                }
                return Err(Error::invalid("connection closed in the middle of a file"));
            }
            left -= want as u64;
            if let Some(u) = upload.as_mut() {
                if let Err(e) = u.write(Bytes::from(buf)).await {
                    // The upload is already discarded; the rest is read and dropped
                    // so the stream stays in step.
                    upload = None;
                    write_error = Some(e);
                }
            }
        }
        let client_ok = matches!(self.answer().await?, Answer::Ok);
        let Some(upload) = upload else {
            let e = write_error.unwrap_or_else(|| Error::internal("upload lost"));
            return self.warn(name, &e).await.map(|()| false);
        };
        if !client_ok {
            upload.abort("the client could not read the file").await?;
            return Ok(false);
        }
        match upload.close().await {
            Ok(_) => self.ack().await.map(|()| true),
            Err(e) => self.warn(name, &e).await.map(|()| false),
        }
    }

    async fn start_upload(&self, path: &VPath) -> Result<Upload> {
        match self.files.stat(path).await {
            Ok(e) if e.is_dir() => {
                return Err(Error::new(ErrorKind::IsADirectory, format!("{path}")))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.files.create(path).await
    }

    // ---- source: the client downloads ----------------------------------------------

    async fn source(&mut self, paths: &[Word]) -> Result<()> {
        // The client (sink) speaks first: it is ready.
        if let Answer::Skip = self.answer().await? {
            return Ok(());
        }
        for word in paths {
            let raw = &word.text;
            let found = match proto::resolve(raw) {
                Ok(path) => match self.expand(word).await {
                    Ok(Some(matches)) => Ok(matches),
                    Ok(None) => self.files.stat(&path).await.map(|e| vec![e]),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match found {
                Ok(entries) => {
                    for entry in entries {
                        self.send_tree(entry).await?;
                    }
                }
                Err(e) => self.warn(raw, &e).await?,
            }
        }
        Ok(())
    }

    /// A pattern in the last segment (`dir/*.txt`), expanded as a shell would,
    /// sorted; `None` when the word is no pattern or nothing matches (then it
    /// is taken literally, as bash does). Patterns in directory parts are not
    /// expanded.
    async fn expand(&self, word: &Word) -> Result<Option<Vec<Entry>>> {
        let Some(pattern) = &word.pattern else {
            return Ok(None);
        };
        let (dir_pattern, name_pattern) = match pattern.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", pattern.as_str()),
        };
        if dir_pattern.contains(['*', '?', '[']) || word.text.ends_with('/') {
            return Ok(None);
        }
        let dir_text = match word.text.rsplit_once('/') {
            Some(("", _)) => "/",
            Some((d, _)) => d,
            None => ".",
        };
        let dir = proto::resolve(dir_text)?;
        let mut matches: Vec<Entry> = match self.files.list(&dir).await {
            Ok(list) => {
                list.try_filter(|e| {
                    futures::future::ready(proto::glob_match(name_pattern, e.name()))
                })
                .try_collect()
                .await?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if matches.is_empty() {
            return Ok(None);
        }
        matches.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(Some(matches))
    }

    /// Sends a file, or a directory with everything below it (with `-r`), walking
    /// with a stack rather than recursion.
    async fn send_tree(&mut self, top: Entry) -> Result<()> {
        enum Step {
            Item(Entry),
            Leave,
        }
        let mut todo = vec![Step::Item(top)];
        while let Some(step) = todo.pop() {
            let entry = match step {
                Step::Leave => {
                    self.send(b"E\n").await?;
                    self.answer().await?;
                    continue;
                }
                Step::Item(e) => e,
            };
            let name = entry.name().to_string();
            if !entry.is_dir() {
                self.send_file(&entry).await?;
                continue;
            }
            if !self.scp.recursive {
                let e = Error::new(ErrorKind::IsADirectory, format!("{}", entry.path))
                    .with_public("not a regular file");
                self.warn(&name, &e).await?;
                continue;
            }
            let children = match self.children(&entry.path).await {
                Ok(c) => c,
                Err(e) => {
                    self.warn(&name, &e).await?;
                    continue;
                }
            };
            if self.scp.preserve {
                if let Some(m) = entry.modified {
                    self.send(&proto::times_header(m)).await?;
                    if let Answer::Skip = self.answer().await? {
                        continue;
                    }
                }
            }
            self.send(&proto::dir_header(&name)).await?;
            if let Answer::Skip = self.answer().await? {
                continue;
            }
            todo.push(Step::Leave);
            todo.extend(children.into_iter().rev().map(Step::Item));
        }
        Ok(())
    }

    /// A directory's entries, sorted by name (names only are kept per level).
    async fn children(&self, dir: &VPath) -> Result<Vec<Entry>> {
        let mut list: Vec<Entry> = self.files.list(dir).await?.try_collect().await?;
        list.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(list)
    }

    async fn send_file(&mut self, entry: &Entry) -> Result<()> {
        let name = entry.name().to_string();
        let download = match self.files.open_read(&entry.path).await {
            Ok(d) => d,
            Err(e) => return self.warn(&name, &e).await,
        };
        if self.scp.preserve {
            if let Some(m) = entry.modified {
                self.send(&proto::times_header(m)).await?;
                if let Answer::Skip = self.answer().await? {
                    download.finish(false).await;
                    return Ok(());
                }
            }
        }
        let size = download.size();
        self.send(&proto::file_header(size, &name)).await?;
        if let Answer::Skip = self.answer().await? {
            download.finish(false).await;
            return Ok(());
        }
        let mut sent = 0u64;
        let mut read_error = None;
        match download.stream(0..size).await {
            Ok(mut chunks) => loop {
                match chunks.try_next().await {
                    Ok(Some(chunk)) => {
                        let chunk = &chunk[..chunk.len().min((size - sent) as usize)];
                        self.send(chunk).await?;
                        sent += chunk.len() as u64;
                        download.add_sent(chunk.len() as u64);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                }
            },
            Err(e) => read_error = Some(e),
        }
        if read_error.is_none() && sent < size {
            read_error = Some(Error::internal(format!(
                "{}: shorter than announced",
                entry.path
            )));
        }
        if let Some(e) = read_error {
            // The header promised `size` bytes: pad, then report in place of the
            // final `\0`, as OpenSSH's scp does when a read fails.
            let zeros = vec![0u8; CHUNK];
            while sent < size {
                let n = (size - sent).min(CHUNK as u64) as usize;
                self.send(&zeros[..n]).await?;
                sent += n as u64;
            }
            download.finish(false).await;
            self.warn(&name, &e).await?;
            self.answer().await?;
            return Ok(());
        }
        self.send(&[0]).await?;
        let complete = matches!(self.answer().await?, Answer::Ok);
        download.finish(complete).await;
        Ok(())
    }
}

/// Reads one line without its `\n`; `None` at a clean end of stream. Bounded by
/// [`proto::MAX_LINE`].
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(Error::invalid(
                "protocol error: connection closed mid-record",
            ));
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            r.consume(i + 1);
            return Ok(Some(line));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        r.consume(n);
        if line.len() > proto::MAX_LINE {
            return Err(Error::invalid("protocol error: record too long"));
        }
    }
}

/// Reads until `buf` is full or the stream ends or fails; returns how many
/// bytes arrived (an interrupted upload keeps them).
async fn read_full<R: AsyncRead + Unpin>(io: &mut R, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match io.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}
