//! How storage calls are logged: through `tracing`, at a level that matches what
//! happened. Looking up a name that does not exist is routine for a file server
//! (every upload checks first), so it is `debug`, not a warning.

use opendal::layers::LoggingInterceptor;
use opendal::raw::{Operation, ServiceInfo};
use opendal::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, Default)]
pub struct StorageLog;

impl LoggingInterceptor for StorageLog {
    fn log(
        &self,
        info: &ServiceInfo,
        operation: Operation,
        context: &[(&str, &str)],
        message: &str,
        err: Option<&Error>,
    ) {
        let path = context
            .iter()
            .find(|(k, _)| *k == "path")
            .map_or("", |(_, v)| *v);
        let service = info.scheme();
        match err {
            None => {
                tracing::trace!(target: "wharf::storage", %service, %operation, path, "{message}")
            }
            Some(e) if routine(e) => {
                tracing::debug!(target: "wharf::storage", %service, %operation, path, error = %e, "{message}")
            }
            Some(e) => {
                tracing::warn!(target: "wharf::storage", %service, %operation, path, error = %e, "{message}")
            }
        }
    }
}

fn routine(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::ConditionNotMatch
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory
    )
}
