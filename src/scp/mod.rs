//! SCP and the few read-only commands an exec request may run, for clients that
//! do not speak SFTP: `scp -O` and every OpenSSH `scp` before 9.0 (`exec scp -t`
//! to upload, `scp -f` to download), and `md5sum`/`sha1sum`/`sha256sum` (rclone).
//!
//! - `proto.rs`: the pure part: command line, records, paths (unit-tested);
//! - `driver.rs`: the sink and the source over the Session layer;
//! - `checksum.rs`: the checksum commands.
//!
//! No shell ever runs: the command line is split into words here, anything a
//! shell would expand is refused, except a download's glob in its last segment,
//! which is matched against the listing. `-p` times are sent on download; on
//! upload they are parsed but not applied yet (the Session cannot set times).

mod checksum;
mod driver;
pub mod proto;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub use proto::Command;

use crate::session::Session;

/// An exec request this server answers (well formed or not).
pub struct Request {
    command: crate::Result<Command>,
    /// The client is scp: errors must reach it as an SCP record too.
    scp: bool,
}

/// Parses an exec request; `None` when it is not a command this server runs.
pub fn parse(raw: &[u8]) -> Option<Request> {
    let command = proto::parse_command(raw)?;
    Some(Request {
        command,
        scp: raw.starts_with(b"scp"),
    })
}

/// Runs `command` (or reports why it is malformed) over the channel `io`, with
/// `err` for the standard error stream; returns the exit status.
pub async fn run<S, E>(request: Request, files: &Session, io: &mut S, mut err: E) -> u32
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    E: AsyncWrite + Unpin + Send,
{
    let mut io = tokio::io::BufReader::new(io);
    let status = match request.command {
        Ok(Command::Scp(scp)) => driver::run(&scp, files, &mut io).await,
        Ok(Command::Checksum { algo, files: names }) => {
            checksum::run(algo, &names, files, &mut io, &mut err).await
        }
        Err(e) => {
            let _ = err
                .write_all(format!("{}\n", crate::reply::text(&e)).as_bytes())
                .await;
            if request.scp {
                // An scp client waits for a record, not for standard error.
                let _ = io
                    .write_all(&proto::error_record(crate::reply::text(&e), true))
                    .await;
            }
            1
        }
    };
    let _ = io.flush().await;
    let _ = err.flush().await;
    status
}
