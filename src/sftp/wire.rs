//! SFTP wire helpers: packet framing with a size limit, the mapping of wharf errors
//! to SFTP status codes, and entries to SFTP attributes and `ls -l` lines.
//! Packet bodies are parsed and serialised by russh-sftp's `protocol` module.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use russh_sftp::protocol::{File, FileAttributes, Packet, Status, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind};
use crate::vfs::{Entry, EntryKind};

/// Largest data in one READ reply or WRITE request we accept (announced to clients
/// through `limits@openssh.com`).
pub const MAX_DATA: u32 = 64 * 1024;
/// Largest packet we accept: a WRITE of `MAX_DATA` plus its header and handle.
pub const MAX_PACKET: u32 = MAX_DATA + 1024;

/// Reads one length-prefixed packet body. `Ok(None)` at a clean end of stream.
pub async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Bytes>> {
    let len = match r.read_u32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len == 0 || len > MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("SFTP packet of {len} bytes (limit {MAX_PACKET})"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(Some(Bytes::from(buf)))
}

/// Serialises a reply, length prefix included.
pub fn encode(packet: Packet) -> Option<Bytes> {
    match Bytes::try_from(packet) {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an SFTP reply");
            None
        }
    }
}

pub fn status(id: u32, code: StatusCode, message: &str) -> Packet {
    Packet::Status(Status {
        id,
        status_code: code,
        error_message: message.to_string(),
        language_tag: "en".to_string(),
    })
}

pub fn ok(id: u32) -> Packet {
    status(id, StatusCode::Ok, "OK")
}

/// The reply for an error: SFTP v3 has few codes, so the message carries the detail
/// (clients show it). Internal errors say only that something failed.
pub fn error(id: u32, e: &Error) -> Packet {
    let code = match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied | ErrorKind::AuthFailed => StatusCode::PermissionDenied,
        ErrorKind::Unsupported => StatusCode::OpUnsupported,
        ErrorKind::InvalidInput => StatusCode::BadMessage,
        _ => StatusCode::Failure,
    };
    let message = match e.kind() {
        ErrorKind::Internal | ErrorKind::Unavailable => {
            tracing::warn!(error = %e, "SFTP request failed");
            e.kind().as_str().to_string()
        }
        _ => e.to_string(),
    };
    status(id, code, &message)
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

pub fn attrs(entry: &Entry, owner: &str) -> FileAttributes {
    let mtime = entry
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs().min(u32::MAX as u64) as u32)
        .unwrap_or(0);
    let mode = match entry.kind {
        EntryKind::Dir => S_IFDIR | 0o755,
        EntryKind::File => S_IFREG | 0o644,
    };
    FileAttributes {
        size: Some(entry.size),
        uid: Some(0),
        user: Some(owner.to_string()),
        gid: Some(0),
        group: Some(owner.to_string()),
        permissions: Some(mode),
        atime: Some(mtime),
        mtime: Some(mtime),
    }
}

/// A directory entry with its `ls -l` style long name, which v3 clients print as is.
pub fn file(entry: &Entry, owner: &str) -> File {
    let attrs = attrs(entry, owner);
    let kind = if entry.is_dir() {
        "drwxr-xr-x"
    } else {
        "-rw-r--r--"
    };
    let when = ls_time(entry.modified.unwrap_or(UNIX_EPOCH), SystemTime::now());
    let longname = format!(
        "{kind}    1 {owner:<8} {owner:<8} {size:>12} {when} {name}",
        size = entry.size,
        name = entry.name()
    );
    File {
        filename: entry.name().to_string(),
        longname,
        attrs,
    }
}

/// `Nov 22 14:05` within the last six months, `Nov 22  2025` otherwise, as `ls -l`.
fn ls_time(t: SystemTime, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let recent = now
        .duration_since(t)
        .map(|age| age.as_secs() < 182 * 86_400)
        .unwrap_or(true);
    let month = MONTHS[(m - 1) as usize];
    if recent {
        let (hh, mm) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
        format!("{month} {d:>2} {hh:02}:{mm:02}")
    } else {
        format!("{month} {d:>2} {y:>5}")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_like_ls() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        let t = UNIX_EPOCH + Duration::from_secs(20_779 * 86_400 + 14 * 3600 + 5 * 60);
        assert_eq!(ls_time(t, t + Duration::from_secs(60)), "Nov 22 14:05");
        let later = t + Duration::from_secs(400 * 86_400);
        assert_eq!(ls_time(t, later), "Nov 22  2026");
    }
}
