//! The one public-reply table: what a client is told for each kind of error, on
//! every door (SFTP, SCP, FTPS, link pages, tus, the API).
//!
//! A client sees only the kind's text below, or an error's explicit public text
//! ([`Error::with_public`]: validation messages written for people). An error's
//! context and source can hold storage URLs, bucket names, response headers or a
//! home's full path, so they go to the log, once, through [`log`].

use crate::error::{Error, ErrorKind};

/// SFTP v3 status codes used in replies (kept here so the table has no protocol
/// crate below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SftpCode {
    NoSuchFile,
    PermissionDenied,
    Failure,
    BadMessage,
    OpUnsupported,
}

impl SftpCode {
    /// OpenSSH's text for the code (`sftp-server.c`, `status_to_message`):
    /// client libraries match on these words.
    pub const fn openssh_text(self) -> &'static str {
        match self {
            SftpCode::NoSuchFile => "No such file",
            SftpCode::PermissionDenied => "Permission denied",
            SftpCode::Failure => "Failure",
            SftpCode::BadMessage => "Bad message",
            SftpCode::OpUnsupported => "Operation unsupported",
        }
    }
}

/// The reply for one kind of error, per protocol.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub sftp: SftpCode,
    pub ftp: u16,
    pub http: u16,
    /// The text a client sees; OpenSSH's words where it has them, since client
    /// libraries match on them.
    pub text: &'static str,
    /// The server's side failed (not the client's request): logged as a warning.
    pub server_fault: bool,
}

const fn r(sftp: SftpCode, ftp: u16, http: u16, text: &'static str, server_fault: bool) -> Reply {
    Reply {
        sftp,
        ftp,
        http,
        text,
        server_fault,
    }
}

/// The table.
pub const fn of(kind: ErrorKind) -> Reply {
    use SftpCode::*;
    match kind {
        ErrorKind::NotFound => r(NoSuchFile, 550, 404, "No such file", false),
        ErrorKind::AlreadyExists => r(Failure, 550, 409, "File exists", false),
        ErrorKind::PermissionDenied => r(PermissionDenied, 550, 403, "Permission denied", false),
        ErrorKind::InvalidInput => r(BadMessage, 553, 400, "Invalid request", false),
        // OpenSSH's sftp-server maps ENOTDIR to "No such file" (a path through
        // a file names nothing), so clients that match on it see the same.
        ErrorKind::NotADirectory => r(NoSuchFile, 550, 409, "Not a directory", false),
        ErrorKind::IsADirectory => r(Failure, 550, 409, "Is a directory", false),
        ErrorKind::DirectoryNotEmpty => r(Failure, 550, 409, "Directory not empty", false),
        ErrorKind::Unsupported => r(OpUnsupported, 504, 400, "Operation unsupported", false),
        ErrorKind::Unavailable => r(
            Failure,
            451,
            503,
            "Temporarily unavailable; try again later",
            true,
        ),
        ErrorKind::StorageFull => r(Failure, 452, 507, "No space left on device", true),
        ErrorKind::AuthFailed => r(PermissionDenied, 530, 401, "Authentication failed", false),
        ErrorKind::Internal => r(Failure, 451, 500, "Failure", true),
    }
}

/// FTPS: a TLS data connection that did not resume the control connection's
/// session while `[ftps] require_ssl_reuse` is on. Code and words are vsftpd's,
/// which clients and their documentation know.
pub const FTP_SESSION_REUSE_REQUIRED: (u16, &str) =
    (522, "SSL connection failed: session reuse required");

/// The error of [`FTP_SESSION_REUSE_REQUIRED`].
pub fn ftp_session_reuse_required() -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        "TLS data connection without session reuse",
    )
    .with_public(FTP_SESSION_REUSE_REQUIRED.1)
}

/// The FTP reply for a failed transfer: `None` for the ordinary table.
pub fn ftp_transfer_special(e: &Error) -> Option<(u16, &'static str)> {
    (e.public_text() == Some(FTP_SESSION_REUSE_REQUIRED.1)).then_some(FTP_SESSION_REUSE_REQUIRED)
}

/// The SFTP status text for `e`: OpenSSH's word for its code, as
/// `sftp-server` sends it, except "No space left on device" (a full disk is
/// worth naming), and a public text written for people on a bad or
/// unsupported request (e.g. "writes must be sequential on this storage").
pub fn sftp_text(e: &Error) -> &str {
    let code = of(e.kind()).sftp;
    match (e.kind(), code) {
        (ErrorKind::StorageFull, _) => of(e.kind()).text,
        (_, SftpCode::BadMessage | SftpCode::OpUnsupported) => {
            e.public_text().unwrap_or(code.openssh_text())
        }
        _ => code.openssh_text(),
    }
}

/// What the client is told about `e`.
pub fn text(e: &Error) -> &str {
    e.public_text().unwrap_or(of(e.kind()).text)
}

/// Logs `e` with its context and source (never shown to the client): a warning
/// when the server's side failed, debug otherwise. `door` names the front-end.
pub fn log(door: &'static str, e: &Error) {
    if of(e.kind()).server_fault {
        tracing::warn!(door, kind = e.kind().as_str(), error = %e, "request failed");
    } else {
        tracing::debug!(door, kind = e.kind().as_str(), error = %e, "request refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_text_never_reaches_the_client() {
        let e = Error::new(ErrorKind::Unavailable, "storage").with_source(std::io::Error::other(
            "https://bucket.s3.example/secret-key",
        ));
        assert_eq!(text(&e), "Temporarily unavailable; try again later");
        let e = Error::new(ErrorKind::NotFound, "/alice/x: not found");
        assert_eq!(text(&e), "No such file");
    }

    #[test]
    fn validation_messages_are_shown() {
        let e = Error::invalid("expiry is past the longest allowed (7d)");
        assert_eq!(text(&e), "expiry is past the longest allowed (7d)");
    }

    #[test]
    fn sftp_texts_are_openssh_words() {
        let e = Error::new(ErrorKind::AlreadyExists, "/x exists");
        assert_eq!(sftp_text(&e), "Failure");
        let e = Error::new(ErrorKind::IsADirectory, "/x");
        assert_eq!(sftp_text(&e), "Failure");
        let e = Error::new(ErrorKind::Internal, "bucket https://s3/secret");
        assert_eq!(sftp_text(&e), "Failure");
        let e = Error::new(ErrorKind::Unsupported, "x");
        assert_eq!(sftp_text(&e), "Operation unsupported");
        let e = Error::new(ErrorKind::InvalidInput, "x");
        assert_eq!(sftp_text(&e), "Bad message");
        let e = Error::not_found("/x: gone");
        assert_eq!(sftp_text(&e), "No such file");
        let e: Error = std::io::Error::from(std::io::ErrorKind::StorageFull).into();
        assert_eq!(sftp_text(&e), "No space left on device");
    }

    #[test]
    fn disk_full_has_its_own_codes() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::StorageFull).into();
        let r = of(e.kind());
        assert_eq!((r.sftp, r.ftp, r.http), (SftpCode::Failure, 452, 507));
        assert_eq!(text(&e), "No space left on device");
    }
}
