//! `md5sum`, `sha1sum` and `sha256sum` over exec, as SFTPGo allows them: cheap,
//! read-only, and what rclone's `md5sum`/`check` ask an SFTP server for. Files are
//! read through the Session (permission, home jail, audit) and hashed as they
//! stream; the output is coreutils' (`<hex>  <name>` per file).

use futures::TryStreamExt;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::proto::{self, Algo};
use crate::error::Result;
use crate::session::Session;

enum Hasher {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    fn new(algo: Algo) -> Self {
        match algo {
            Algo::Md5 => Hasher::Md5(Md5::new()),
            Algo::Sha1 => Hasher::Sha1(Sha1::new()),
            Algo::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
        }
    }
}

/// Prints one line per name on `out` and errors on `err`; returns the exit
/// status (1 if any name failed). No name, or `-`: the channel's input.
pub async fn run<S, E>(
    algo: Algo,
    names: &[String],
    files: &Session,
    io: &mut S,
    err: &mut E,
) -> u32
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    E: AsyncWrite + Unpin + Send,
{
    let stdin = ["-".to_string()];
    let names = if names.is_empty() { &stdin[..] } else { names };
    let mut status = 0;
    for name in names {
        let res = if name == "-" {
            hash_input(algo, io).await
        } else {
            hash_file(algo, name, files).await
        };
        let written = match res {
            Ok(hex) => io.write_all(format!("{hex}  {name}\n").as_bytes()).await,
            Err(e) => {
                crate::reply::log("checksum", &e);
                status = 1;
                let line = format!("{}: {name}: {}\n", algo.name(), crate::reply::text(&e));
                err.write_all(line.as_bytes()).await
            }
        };
        if written.is_err() {
            return 1;
        }
    }
    let _ = io.flush().await;
    let _ = err.flush().await;
    status
}

async fn hash_input<S: AsyncRead + Unpin>(algo: Algo, io: &mut S) -> Result<String> {
    let mut h = Hasher::new(algo);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Ok(h.hex());
        }
        h.update(&buf[..n]);
    }
}

async fn hash_file(algo: Algo, name: &str, files: &Session) -> Result<String> {
    let path = proto::resolve(name)?;
    let download = files.open_read(&path).await?;
    let mut h = Hasher::new(algo);
    let mut chunks = download.stream(0..download.size()).await?;
    while let Some(chunk) = chunks.try_next().await? {
        h.update(&chunk);
    }
    // Recorded as a read of the whole file; no byte left the server.
    download.finish(true).await;
    Ok(h.hex())
}
