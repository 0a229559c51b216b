//! The one error type of wharf: a [`Copy`] [`ErrorKind`] that front-ends map to a
//! protocol reply, a human context line, and the underlying source for logs.

use std::fmt;
use wharf_connectors::opendal;

/// What went wrong, in the terms a protocol reply needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    PermissionDenied,
    InvalidInput,
    NotADirectory,
    IsADirectory,
    DirectoryNotEmpty,
    /// The storage service or the operation is not able to do this.
    Unsupported,
    /// Storage or database temporarily unreachable; the client may retry.
    Unavailable,
    /// The storage has no room left (disk full, quota reached).
    StorageFull,
    /// Authentication failed or the account may not use this protocol.
    AuthFailed,
    /// A bug or an unexpected state; details go to the log, not to the client.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotADirectory => "not a directory",
            ErrorKind::IsADirectory => "is a directory",
            ErrorKind::DirectoryNotEmpty => "directory not empty",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unavailable => "temporarily unavailable",
            ErrorKind::StorageFull => "no space left",
            ErrorKind::AuthFailed => "authentication failed",
            ErrorKind::Internal => "internal error",
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error with a kind (decides the reply), a context (says what was being done),
/// an optional source (says why, for the log) and an optional public text: words
/// written for the client (a validation message), the only text besides the kind's
/// own that may reach one (see [`crate::reply`]).
pub struct Error {
    kind: ErrorKind,
    context: String,
    source: Option<Source>,
    public: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error {
            kind,
            context: context.into(),
            source: None,
            public: None,
        }
    }

    /// Sets the text a client may see instead of the kind's own.
    pub fn with_public(mut self, text: impl Into<String>) -> Self {
        self.public = Some(text.into());
        self
    }

    /// The client-safe text set by [`Error::with_public`], if any.
    pub fn public_text(&self) -> Option<&str> {
        self.public.as_deref()
    }

    /// Rewrites the context and public text (e.g. to drop a home prefix), keeping
    /// the kind and source.
    pub fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        self.context = f(&self.context);
        self.public = self.public.as_deref().map(&f);
        self
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefixes the context, e.g. with the operation and path being handled.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.context = format!("{what}: {}", self.context);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Not found, with a message written for the client (it is shown to them).
    pub fn not_found(context: impl Into<String>) -> Self {
        let text = context.into();
        Error::new(ErrorKind::NotFound, text.clone()).with_public(text)
    }

    /// Invalid input, with a message written for the client (it is shown to them).
    pub fn invalid(context: impl Into<String>) -> Self {
        let text = context.into();
        Error::new(ErrorKind::InvalidInput, text.clone()).with_public(text)
    }

    /// Refused, with a message written for the client (it is shown to them).
    pub fn denied(context: impl Into<String>) -> Self {
        let text = context.into();
        Error::new(ErrorKind::PermissionDenied, text.clone()).with_public(text)
    }

    pub fn internal(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, context)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<opendal::Error> for Error {
    fn from(e: opendal::Error) -> Self {
        use opendal::ErrorKind as K;
        if let Some(io) = io_source(&e) {
            if io.kind() == std::io::ErrorKind::InvalidFilename {
                // ENAMETOOLONG: the name (or the fs staging name built from it) is too
                // long for this storage; the client should pick a shorter one.
                return Error::invalid("the name is too long for this storage");
            }
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) {
                return Error::new(ErrorKind::StorageFull, "storage").with_source(e);
            }
        }
        let kind = match e.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::AlreadyExists | K::ConditionNotMatch => ErrorKind::AlreadyExists,
            K::PermissionDenied => ErrorKind::PermissionDenied,
            K::IsADirectory => ErrorKind::IsADirectory,
            K::NotADirectory => ErrorKind::NotADirectory,
            K::Unsupported => ErrorKind::Unsupported,
            K::RateLimited | K::ConfigInvalid => ErrorKind::Unavailable,
            _ if e.is_temporary() => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, "storage").with_source(e)
    }
}

/// The I/O error at the root of a storage error, if any.
fn io_source(e: &opendal::Error) -> Option<&std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                ErrorKind::Unavailable
            }
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                ErrorKind::AlreadyExists
            }
            _ => ErrorKind::Internal,
        };
        Error::new(kind, "database").with_source(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::InvalidFilename => return Error::invalid("the name is too long for this storage"),
            K::StorageFull | K::QuotaExceeded => {
                return Error::new(ErrorKind::StorageFull, "the storage is full").with_source(e)
            }
            K::NotFound => ErrorKind::NotFound,
            K::PermissionDenied => ErrorKind::PermissionDenied,
            K::AlreadyExists => ErrorKind::AlreadyExists,
            K::IsADirectory => ErrorKind::IsADirectory,
            K::NotADirectory => ErrorKind::NotADirectory,
            K::InvalidInput | K::InvalidData => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, "i/o").with_source(e)
    }
}
