//! SFTP wire helpers: packet framing with a size limit, the mapping of wharf errors
//! to SFTP status codes, and entries to SFTP attributes and `ls -l` lines.
//! Packet bodies are parsed and serialised by russh-sftp's `protocol` module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use russh_sftp::protocol::{File, FileAttributes, Packet, Status, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind, Result};
use crate::vfs::{Entry, EntryKind, SetAttrs};

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

/// Success, in OpenSSH's words.
pub fn ok(id: u32) -> Packet {
    status(id, StatusCode::Ok, "Success")
}

/// A status with OpenSSH's word for `code` (from the reply table): requests
/// refused by the SFTP layer itself (a bad handle, an unknown extension).
pub fn plain(id: u32, code: crate::reply::SftpCode) -> Packet {
    use crate::reply::SftpCode;
    let status_code = match code {
        SftpCode::NoSuchFile => StatusCode::NoSuchFile,
        SftpCode::PermissionDenied => StatusCode::PermissionDenied,
        SftpCode::Failure => StatusCode::Failure,
        SftpCode::BadMessage => StatusCode::BadMessage,
        SftpCode::OpUnsupported => StatusCode::OpUnsupported,
    };
    status(id, status_code, code.openssh_text())
}

/// End of a file or a directory listing, in OpenSSH's words.
pub fn eof(id: u32) -> Packet {
    status(id, StatusCode::Eof, "End of file")
}

/// The reply for an error, from the one public-reply table; the details go to the
/// log only. Codes that clients map to errno get OpenSSH's own words (libraries
/// match on them); a bad request or an unsupported one may say why.
pub fn error(id: u32, e: &Error) -> Packet {
    use crate::reply::SftpCode;
    crate::reply::log("sftp", e);
    let code = match crate::reply::of(e.kind()).sftp {
        SftpCode::NoSuchFile => StatusCode::NoSuchFile,
        SftpCode::PermissionDenied => StatusCode::PermissionDenied,
        SftpCode::Failure => StatusCode::Failure,
        SftpCode::BadMessage => StatusCode::BadMessage,
        SftpCode::OpUnsupported => StatusCode::OpUnsupported,
    };
    status(id, code, crate::reply::sftp_text(e))
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

pub fn attrs(entry: &Entry, owner: &str) -> FileAttributes {
    let mtime = entry
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs().min(u32::MAX as u64) as u32)
        .unwrap_or(0);
    // A symlink has its own attributes, as `lstat` gives them: mode 0777, the
    // length of its text.
    let (mode, size) = match (&entry.link, entry.kind) {
        (Some(text), _) => (S_IFLNK | 0o777, text.len() as u64),
        (None, EntryKind::Dir) => (S_IFDIR | entry.mode.unwrap_or(0o755), entry.size),
        (None, EntryKind::File) => (S_IFREG | entry.mode.unwrap_or(0o644), entry.size),
    };
    FileAttributes {
        size: Some(size),
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
    let longname = crate::listing::ls_line(entry, owner, SystemTime::now());
    File {
        filename: entry.name().to_string(),
        longname,
        attrs,
    }
}

/// The changes a SETSTAT or FSETSTAT asks for. Owners cannot change: wharf reports
/// uid and gid 0, so only a client echoing them back is not refused.
pub fn set_attrs(a: &FileAttributes) -> Result<SetAttrs> {
    if a.uid.is_some_and(|u| u != 0) || a.gid.is_some_and(|g| g != 0) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "changing a file's owner is not supported",
        ));
    }
    let time = |secs: u32| UNIX_EPOCH + Duration::from_secs(secs.into());
    Ok(SetAttrs {
        size: a.size,
        mode: a.permissions.map(|p| p & 0o7777),
        atime: a.atime.map(time),
        mtime: a.mtime.map(time),
    })
}

/// The reply to `statvfs@openssh.com` and `fstatvfs@openssh.com`: eleven u64
/// figures in OpenSSH's order.
pub fn statvfs(id: u32, st: &crate::vfs::FsStats) -> Packet {
    let mut data = Vec::with_capacity(88);
    for v in [
        st.bsize, st.frsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree, st.favail,
        st.fsid, st.flag, st.namemax,
    ] {
        data.extend_from_slice(&v.to_be_bytes());
    }
    Packet::ExtendedReply(russh_sftp::protocol::ExtendedReply { id, data })
}
