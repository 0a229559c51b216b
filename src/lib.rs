//! wharf: an SFTP/FTPS gateway with shared links, on top of storage you already have.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, `${ENV}` expansion, the embedded default.
//! - [`vfs`]: [`vfs::VPath`] (normalised, cannot climb out), the mount table, and
//!   streaming file operations over OpenDAL connectors (built by `wharf-connectors`).
//! - [`session`]: the one door to files for every front-end: permission check,
//!   path resolution inside the user's home, storage call, audit record.
//! - [`policy`]: pure decisions: permissions and link rules.
//! - [`links`]: the link service (create send/share links, manage, purge).
//! - [`store`]: the metadata store interface and its SQLite implementation.
//! - [`audit`]: events, the bounded queue and the batching writer.
//! - [`users`], [`secret`]: account rules, SSH key parsing, argon2, random values.
//! - [`login`], [`defender`]: logins for every protocol, audited, with a per-address
//!   lock-out after repeated failures.
//! - [`sftp`]: the SFTP front-end (russh; wharf's own request loop).
//! - [`scp`]: SCP (`scp -t`/`-f`) and checksum commands over SSH exec.
//! - [`http`]: the link server (hyper): pages, forms and downloads of shared links,
//!   and the staff pages under `/app`.
//! - [`api`]: the admin HTTP API (`/api/v1` on the link server), JSON with API
//!   keys ([`apikeys`]) acting as their user.
//! - [`mail`]: outgoing mail (SMTP through lettre, or an outbox of .eml files).
//! - [`notify`]: notifications to a link's owner (the staff feed, and mail).
//! - [`ftps`]: the FTPS front-end (explicit and implicit TLS; own control loop).
//! - [`net`]: the accept loop every listener shares (per-address caps, login grace
//!   time, graceful drain).
//! - [`shutdown`]: the stop flag and the signals that raise it; [`clock`]: stored
//!   times (ms since the epoch) and their RFC 3339 form.
//! - [`app`]: wires everything for `wharf serve` and shuts it down cleanly.
//! - [`cli`]: the `wharf` command line.
//! - [`logging`]: tracing setup (text or JSON).
//! - [`error`]: the one error type with a [`error::ErrorKind`]; [`reply`]: the one
//!   public-reply table every door answers errors from (never internal text).
//! - [`sweep`]: clean-up of what a crash leaves (staged files, unsettled downloads).
//! - [`proxy`]: trusted CIDRs and PROXY protocol v1/v2 headers for the listeners.
//! - [`certs`]: TLS certificates replaceable at run time (FTPS, HTTPS);
//!   [`reload`]: what SIGHUP re-reads; [`live`]: settings it can swap in place.
//! - [`metrics`]: Prometheus metrics, `/healthz`, `/readyz`, `wharf ping`.
//! - [`sdnotify`]: systemd readiness, reload and stop notices (`Type=notify`).
//! - [`backup`]: `wharf backup` / `wharf restore` (database and keys in a tar).
//! - [`listing`]: `ls -l` lines and MLSD facts shared by SFTP and FTPS.
//! - [`units`]: sizes as people read them.
//! - [`uploads`]: resumable (tus) uploads staged on disk until complete.
//! - [`addressbook`]: staff's clients and contacts, and who sees and changes them.
//! - [`budget`]: the memory budget transfer buffers draw from across sessions;
//!   [`allocator`]: glibc malloc settings that give freed memory back.

pub mod addressbook;
pub mod allocator;
pub mod api;
pub mod apikeys;
pub mod app;
pub mod audit;
pub mod backup;
pub mod budget;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod defender;
pub mod error;
pub mod event;
pub mod ftps;
pub mod health;
pub mod http;
pub mod links;
pub mod listing;
pub mod live;
pub mod logging;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod reply;
pub mod scp;
pub mod sdnotify;
pub mod secret;
pub mod session;
pub mod sftp;
pub mod shutdown;
pub mod store;
pub mod sweep;
pub mod units;
pub mod uploads;
pub mod users;
pub mod vfs;

pub use error::{Error, ErrorKind, Result};
