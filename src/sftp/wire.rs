//! SFTP wire helpers: packet framing with a size limit, the mapping of wharf errors
//! to SFTP status codes, and entries to SFTP attributes and `ls -l` lines.
//! Packet bodies are parsed and serialised by russh-sftp's `protocol` module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
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
    // Read into uninitialised space: zero-filling every 32 KiB WRITE first cost
    // a measurable share of an upload's CPU.
    let len = len as usize;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        if r.read_buf(&mut (&mut buf).limit(len)).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(buf.freeze()))
}

/// SSH_FXP_DATA.
const FXP_DATA: u8 = 103;
/// SSH_FXP_WRITE.
pub const FXP_WRITE: u8 = 6;

/// A READ reply, serialised: the data is copied once, straight into the packet
/// (through russh-sftp's `Data` it was copied into a `Vec` first, then again by
/// the serialiser).
/// A DATA reply as its header and its data, sent one after the other (no copy
/// of the data); data under [`SPLIT_FROM`] is copied behind the header instead,
/// sparing the client a small SSH packet.
pub fn data_parts(id: u32, data: Bytes) -> (Bytes, Bytes) {
    if data.len() < SPLIT_FROM {
        return (self::data(id, &data), Bytes::new());
    }
    let mut head = BytesMut::with_capacity(13);
    head.put_u32(9 + data.len() as u32);
    head.put_u8(FXP_DATA);
    head.put_u32(id);
    head.put_u32(data.len() as u32);
    (head.freeze(), data)
}

/// The smallest READ data sent apart from its header.
const SPLIT_FROM: usize = 8 * 1024;

pub fn data(id: u32, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(13 + data.len());
    out.put_u32(9 + data.len() as u32);
    out.put_u8(FXP_DATA);
    out.put_u32(id);
    out.put_u32(data.len() as u32);
    out.put_slice(data);
    out.freeze()
}

/// A WRITE request's fields, parsed from the packet body without copying its
/// data (russh-sftp's parser copies it into a `Vec`): the data is a slice of
/// the body. `None` when the body is not a well-formed WRITE.
pub struct Write {
    pub id: u32,
    pub handle: String,
    pub offset: u64,
    pub data: Bytes,
}

impl Write {
    pub fn parse(body: &Bytes) -> Option<Write> {
        let mut b = body.clone();
        if b.remaining() < 9 || b.get_u8() != FXP_WRITE {
            return None;
        }
        let id = b.get_u32();
        let n = b.get_u32() as usize;
        if b.remaining() < n {
            return None;
        }
        let handle = String::from_utf8(b.split_to(n).to_vec()).ok()?;
        if b.remaining() < 12 {
            return None;
        }
        let offset = b.get_u64();
        let n = b.get_u32() as usize;
        if b.remaining() < n {
            return None;
        }
        // Bytes after the data are ignored, as russh-sftp's parser does.
        Some(Write {
            id,
            handle,
            offset,
            data: b.split_to(n),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::{Data, Write as WritePacket};

    #[test]
    fn data_reply_is_what_russh_sftp_serialises() {
        for size in [0, 1, 32 * 1024, MAX_DATA as usize] {
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let theirs = encode(Packet::Data(Data {
                id: 77,
                data: bytes.clone(),
            }))
            .unwrap();
            assert_eq!(data(77, &bytes), theirs, "{size} bytes");
        }
    }

    #[test]
    fn data_parts_join_to_the_data_reply() {
        for size in [
            0,
            1,
            SPLIT_FROM - 1,
            SPLIT_FROM,
            32 * 1024,
            MAX_DATA as usize,
        ] {
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (head, body) = data_parts(5, Bytes::from(bytes.clone()));
            assert_eq!([head, body].concat(), data(5, &bytes), "{size} bytes");
        }
    }

    /// A WRITE body (no length prefix), as `read_packet` returns it.
    fn write_body(handle: &str, offset: u64, data: &[u8]) -> Bytes {
        let framed = encode(Packet::Write(WritePacket {
            id: 9,
            handle: handle.to_string(),
            offset,
            data: data.to_vec(),
        }))
        .unwrap();
        framed.slice(4..)
    }

    #[test]
    fn write_is_parsed_as_russh_sftp_parses_it() {
        for size in [0, 1, 32 * 1024] {
            let bytes: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let body = write_body("h-1", 1 << 33, &bytes);
            let ours = Write::parse(&body).expect("well-formed");
            let Ok(Packet::Write(theirs)) = Packet::try_from(&mut body.clone()) else {
                panic!("russh-sftp parses it");
            };
            assert_eq!(ours.id, theirs.id);
            assert_eq!(ours.handle, theirs.handle);
            assert_eq!(ours.offset, theirs.offset);
            assert_eq!(&ours.data[..], &theirs.data[..]);
        }
    }

    #[test]
    fn malformed_writes_are_left_to_the_general_parser() {
        let body = write_body("h-1", 0, b"abc");
        // Cut anywhere: no WRITE comes out of it.
        for end in 0..body.len() {
            assert!(Write::parse(&body.slice(..end)).is_none(), "cut at {end}");
        }
        // Not a WRITE.
        let mut other = body.to_vec();
        other[0] = 5;
        assert!(Write::parse(&Bytes::from(other)).is_none());
        // A handle that is not UTF-8.
        let mut bad = body.to_vec();
        bad[9] = 0xff;
        assert!(Write::parse(&Bytes::from(bad)).is_none());
    }
}
