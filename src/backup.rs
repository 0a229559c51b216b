//! `wharf backup` and `wharf restore`: the data directory's own state in one file.
//!
//! The file is a plain POSIX tar (readable with `tar tf`), holding, in order:
//! - `wharf-backup.json`: format version, wharf version, creation time, and the
//!   name, size and SHA-256 of every other member;
//! - `wharf.db`: a consistent copy of the database made with SQLite's online
//!   backup API in one step (one read transaction), so a running `serve` keeps
//!   writing meanwhile and the copy is a single point in time;
//! - the keys and certificates that live in the data directory, when present
//!   (SSH host key, FTPS pair, link-signing key and its public half).
//!
//! Not included: the files in storage (back those up with the storage's own
//! tools), and key or certificate files configured outside the data directory.
//! A restore checks every member's SHA-256 and the database's integrity, and never
//! writes over an existing database.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Bumped when the layout changes; a restore refuses formats it does not know.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "wharf-backup.json";
const DATABASE: &str = "wharf.db";
/// Key and certificate files kept in the data directory.
const SECRETS: &[&str] = &[
    crate::sftp::hostkey::DEFAULT_FILE,
    crate::ftps::tls::CERT_FILE,
    crate::ftps::tls::KEY_FILE,
    crate::links::grant::KEY_FILE,
    crate::links::grant::PUBLIC_FILE,
];

/// What a backup holds, from its manifest.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub wharf_version: String,
    pub created: String,
    pub files: Vec<Member>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Writes a backup of `data_dir` to `to` (owner-only; replaced atomically).
pub fn backup(data_dir: &Path, to: &Path) -> Result<Manifest> {
    let db = data_dir.join(DATABASE);
    if !db.is_file() {
        return Err(Error::not_found(format!("no database at {}", db.display())));
    }
    let snapshot = sibling(to, ".db-snapshot");
    let _ = std::fs::remove_file(&snapshot);
    let result = (|| {
        copy_database(&db, &snapshot)?;
        let mut members = vec![(DATABASE.to_string(), std::fs::read(&snapshot)?)];
        for name in SECRETS {
            match std::fs::read(data_dir.join(name)) {
                Ok(bytes) => members.push((name.to_string(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::from(e).context(format!("reading {name}")));
                }
            }
        }
        let manifest = Manifest {
            format: FORMAT,
            wharf_version: env!("CARGO_PKG_VERSION").into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            files: members
                .iter()
                .map(|(name, bytes)| Member {
                    name: name.clone(),
                    size: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(bytes)),
                })
                .collect(),
        };
        let tmp = sibling(to, ".partial");
        let mut out = private_file(&tmp)?;
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::internal("manifest").with_source(e))?;
        tar::append(&mut out, MANIFEST, &json)?;
        for (name, bytes) in &members {
            tar::append(&mut out, name, bytes)?;
        }
        tar::finish(&mut out)?;
        out.sync_all()?;
        std::fs::rename(&tmp, to)
            .map_err(|e| Error::from(e).context(format!("writing {}", to.display())))?;
        Ok(manifest)
    })();
    let _ = std::fs::remove_file(&snapshot);
    result
}

/// Restores the backup `from` into `data_dir`, which must hold no database yet.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest> {
    if data_dir.join(DATABASE).exists() {
        return Err(Error::invalid(format!(
            "{} already holds a database; restore into a new data directory",
            data_dir.display()
        )));
    }
    let mut input = std::fs::File::open(from)
        .map_err(|e| Error::from(e).context(format!("opening {}", from.display())))?;
    let members = tar::read_all(&mut input)?;
    let (first, json) = members
        .first()
        .ok_or_else(|| Error::invalid("the backup is empty"))?;
    if first != MANIFEST {
        return Err(Error::invalid("not a wharf backup (no manifest first)"));
    }
    let manifest: Manifest = serde_json::from_slice(json)
        .map_err(|e| Error::invalid(format!("the backup's manifest does not parse: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Error::invalid(format!(
            "backup format {} is not known to this wharf (knows {FORMAT})",
            manifest.format
        )));
    }
    for m in &manifest.files {
        let allowed = m.name == DATABASE || SECRETS.contains(&m.name.as_str());
        let bytes = members
            .iter()
            .find(|(n, _)| *n == m.name)
            .map(|(_, b)| b)
            .filter(|_| allowed)
            .ok_or_else(|| Error::invalid(format!("the backup lacks {}", m.name)))?;
        if hex::encode(Sha256::digest(bytes)) != m.sha256 {
            return Err(Error::invalid(format!(
                "{} is damaged (SHA-256 differs)",
                m.name
            )));
        }
    }
    for m in &manifest.files {
        let bytes = &members
            .iter()
            .find(|(n, _)| *n == m.name)
            .expect("checked")
            .1;
        let path = data_dir.join(&m.name);
        let mut f = private_file(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    let db = data_dir.join(DATABASE);
    let check = integrity(&db)?;
    if check != "ok" {
        let _ = std::fs::remove_file(&db);
        return Err(Error::invalid(format!(
            "the restored database fails its check: {check}"
        )));
    }
    Ok(manifest)
}

/// `PRAGMA integrity_check` of the database at `path`.
pub fn integrity(path: &Path) -> Result<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::internal("opening the database").with_source(e))?;
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .map_err(|e| Error::internal("checking the database").with_source(e))
}

/// The online backup, all pages in one step: one read transaction, so writers
/// (WAL) go on and the copy never restarts.
fn copy_database(db: &Path, to: &Path) -> Result<()> {
    let fail = |e: rusqlite::Error| Error::internal("backing up the database").with_source(e);
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    src.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(fail)?;
    drop(private_file(to)?);
    let mut dst = Connection::open(to).map_err(fail)?;
    let backup = rusqlite::backup::Backup::new(&src, &mut dst).map_err(fail)?;
    // A busy source (a writer checkpointing) is retried for a while.
    let mut tries = 0;
    loop {
        match backup.step(-1).map_err(fail)? {
            rusqlite::backup::StepResult::Done => break,
            _ if tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            _ => return Err(Error::internal("the database stayed busy; backup not made")),
        }
    }
    drop(backup);
    dst.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(fail)?;
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn private_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))
}

/// Just enough POSIX ustar for flat archives of regular files.
mod tar {
    use super::*;

    const BLOCK: usize = 512;
    /// Members are small (keys, a database); refuse absurd sizes from a bad file.
    const MAX_MEMBER: u64 = 64 << 30;

    pub fn append(out: &mut impl Write, name: &str, bytes: &[u8]) -> Result<()> {
        let mut h = [0u8; BLOCK];
        let put = |h: &mut [u8; BLOCK], at: usize, len: usize, v: &[u8]| {
            h[at..at + v.len().min(len)].copy_from_slice(&v[..v.len().min(len)]);
        };
        put(&mut h, 0, 100, name.as_bytes());
        put(&mut h, 100, 8, b"0000600\0");
        put(&mut h, 108, 8, b"0000000\0");
        put(&mut h, 116, 8, b"0000000\0");
        put(
            &mut h,
            124,
            12,
            format!("{:011o}\0", bytes.len()).as_bytes(),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        put(&mut h, 136, 12, format!("{now:011o}\0").as_bytes());
        put(&mut h, 148, 8, b"        ");
        h[156] = b'0';
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        out.write_all(&h)?;
        out.write_all(bytes)?;
        let pad = (BLOCK - bytes.len() % BLOCK) % BLOCK;
        out.write_all(&vec![0u8; pad])?;
        Ok(())
    }

    pub fn finish(out: &mut impl Write) -> Result<()> {
        out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(())
    }

    fn octal(field: &[u8]) -> Option<u64> {
        let s = std::str::from_utf8(field).ok()?;
        let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
        u64::from_str_radix(s, 8).ok()
    }

    pub fn read_all(input: &mut impl Read) -> Result<Vec<(String, Vec<u8>)>> {
        let bad = |what: &str| Error::invalid(format!("not a wharf backup: {what}"));
        let mut members = Vec::new();
        loop {
            let mut h = [0u8; BLOCK];
            input
                .read_exact(&mut h)
                .map_err(|_| bad("the archive ends early"))?;
            if h.iter().all(|&b| b == 0) {
                return Ok(members);
            }
            let stored = octal(&h[148..156]).ok_or_else(|| bad("bad header"))?;
            let mut copy = h;
            copy[148..156].copy_from_slice(b"        ");
            let sum: u64 = copy.iter().map(|&b| u64::from(b)).sum();
            if sum != stored || &h[257..262] != b"ustar" || h[156] != b'0' {
                return Err(bad("bad header"));
            }
            let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8(h[..end].to_vec()).map_err(|_| bad("bad name"))?;
            let size = octal(&h[124..136]).ok_or_else(|| bad("bad size"))?;
            if size > MAX_MEMBER || name.contains('/') || name.starts_with('.') {
                return Err(bad("unexpected member"));
            }
            let mut bytes = vec![0u8; size as usize];
            input
                .read_exact(&mut bytes)
                .map_err(|_| bad("the archive ends early"))?;
            let pad = (BLOCK - size as usize % BLOCK) % BLOCK;
            let mut skip = vec![0u8; pad];
            input
                .read_exact(&mut skip)
                .map_err(|_| bad("the archive ends early"))?;
            members.push((name, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip_and_damage_is_refused() {
        let mut buf = Vec::new();
        tar::append(&mut buf, "a", b"hello").unwrap();
        tar::append(&mut buf, "b", &[7u8; 1024]).unwrap();
        tar::finish(&mut buf).unwrap();
        let got = tar::read_all(&mut buf.as_slice()).unwrap();
        assert_eq!(got[0], ("a".to_string(), b"hello".to_vec()));
        assert_eq!(got[1].1.len(), 1024);
        buf[3] ^= 1;
        assert!(tar::read_all(&mut buf.as_slice()).is_err());
    }
}
