//! The TOML file as written: serde structs that mirror `config/wharf.example.toml`.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

use super::values::{ByteSize, EnvString, HumanDuration};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<Spanned<EnvString>>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default, rename = "connector")]
    pub connectors: Vec<ConnectorSection>,
    #[serde(default, rename = "mount")]
    pub mounts: Vec<MountSection>,
    #[serde(default)]
    pub transfers: TransfersSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub sftp: SftpSection,
    #[serde(default)]
    pub defender: DefenderSection,
    #[serde(default)]
    pub ftps: FtpsSection,
    #[serde(default)]
    pub links: LinksSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub mail: MailSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[database]`: absent, the SQLite file in the data directory.
    pub database: Option<DatabaseSection>,
}

/// `[database]`: a shared PostgreSQL database (several nodes) instead of SQLite.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `postgresql://user:${WHARF_DB_PASSWORD}@host:5432/wharf`
    pub url: EnvString,
}

/// `[metrics]`: Prometheus metrics and health checks; off without `listen`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    pub listen: EnvString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub level: EnvString,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: EnvString("info".into()),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSection {
    pub name: Spanned<EnvString>,
    pub scheme: Spanned<EnvString>,
    #[serde(default)]
    pub options: BTreeMap<String, EnvString>,
    /// Link downloads of a single file answer 303 to a presigned GET.
    #[serde(default)]
    pub direct_downloads: bool,
    /// How long such a presigned GET works (default 5 minutes).
    #[serde(default)]
    pub direct_download_lifetime: Option<Spanned<HumanDuration>>,
    /// The upload page sends files straight to the bucket (S3 multipart
    /// parts, Azure Blob blocks).
    #[serde(default)]
    pub direct_uploads: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSection {
    pub path: Spanned<EnvString>,
    pub connector: Spanned<EnvString>,
    #[serde(default)]
    pub root: Option<Spanned<EnvString>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransfersSection {
    pub connector: Option<Spanned<EnvString>>,
    pub root: Option<Spanned<EnvString>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub buffer_size: ByteSize,
    /// Memory all transfers' buffers may hold together (`crate::budget`).
    pub buffer_budget: ByteSize,
    pub timeout: HumanDuration,
    pub io_timeout: HumanDuration,
    pub max_retries: usize,
    /// SFTP SETSTAT where storage keeps no attributes: "refuse" or "ignore".
    pub setstat_mode: crate::vfs::SetstatMode,
    /// Uploads cut off by a lost connection: "discard" or "keep".
    pub interrupted_uploads: crate::vfs::InterruptedUploads,
}

impl Default for StorageSection {
    fn default() -> Self {
        let t = wharf_connectors::Tuning::default();
        StorageSection {
            buffer_size: ByteSize(crate::vfs::DEFAULT_BUFFER as u64),
            buffer_budget: ByteSize(crate::budget::DEFAULT_BUDGET as u64),
            timeout: HumanDuration(t.timeout),
            io_timeout: HumanDuration(t.io_timeout),
            max_retries: t.max_retries,
            setstat_mode: crate::vfs::SetstatMode::default(),
            interrupted_uploads: crate::vfs::InterruptedUploads::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    pub queue: usize,
    pub batch: usize,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            queue: 4096,
            batch: 256,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftpSection {
    pub enabled: bool,
    pub listen: EnvString,
    /// Existing OpenSSH private host keys (one path or an array); none: Ed25519,
    /// ECDSA and RSA keys generated in the data directory.
    pub host_key: EnvStrings,
    pub max_sessions: usize,
    pub idle_timeout: HumanDuration,
    pub max_handles: usize,
    /// Delay before answering a failed authentication (slows guessing).
    pub auth_delay: HumanDuration,
    /// A connection not logged in after this long is closed.
    pub login_grace_time: HumanDuration,
    /// Most connections from one address, and those not yet logged in.
    pub max_per_address: usize,
    pub max_unauthenticated_per_address: usize,
    /// Load balancers (CIDR ranges) whose connections start with a PROXY
    /// protocol header naming the client; empty: off.
    pub proxy_protocol: Vec<String>,
    /// SFTP SYMLINK/READLINK: "confined" (inside the home, on fs) or "refuse".
    pub symlinks: super::Symlinks,
}

/// One string or an array of strings, each with `${ENV}` expanded.
#[derive(Debug, Default)]
pub struct EnvStrings(pub Vec<EnvString>);

impl<'de> Deserialize<'de> for EnvStrings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<EnvString>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path or an array of paths")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                super::values::expand_env(s, |name| std::env::var(name).ok())
                    .map(|s| vec![EnvString(s)])
                    .map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<EnvString>()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V).map(EnvStrings)
    }
}

impl Default for SftpSection {
    fn default() -> Self {
        SftpSection {
            enabled: true,
            listen: EnvString("127.0.0.1:2022".into()),
            host_key: EnvStrings::default(),
            max_sessions: 64,
            idle_timeout: HumanDuration(std::time::Duration::from_secs(600)),
            max_handles: 64,
            auth_delay: HumanDuration(std::time::Duration::from_secs(1)),
            login_grace_time: HumanDuration(std::time::Duration::from_secs(30)),
            max_per_address: 32,
            max_unauthenticated_per_address: 24,
            proxy_protocol: Vec::new(),
            symlinks: super::Symlinks::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefenderSection {
    pub max_failures: u32,
    pub window: HumanDuration,
    pub ban: HumanDuration,
}

impl Default for DefenderSection {
    fn default() -> Self {
        DefenderSection {
            max_failures: 5,
            window: HumanDuration(std::time::Duration::from_secs(300)),
            ban: HumanDuration(std::time::Duration::from_secs(900)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpsSection {
    pub enabled: bool,
    /// Explicit FTPS (AUTH TLS); empty disables this listener.
    pub explicit_listen: EnvString,
    /// Implicit FTPS (TLS from the first byte); empty disables this listener.
    pub implicit_listen: EnvString,
    pub certificate: Option<EnvString>,
    pub key: Option<EnvString>,
    /// `50000-50100`; empty: any free port.
    pub passive_ports: EnvString,
    /// The address announced in PASV replies (behind NAT); empty: the local one.
    pub passive_address: EnvString,
    pub allow_plain: bool,
    pub max_sessions: usize,
    pub idle_timeout: HumanDuration,
    /// A connection not logged in after this long is closed.
    pub login_grace_time: HumanDuration,
    /// Most control connections from one address, and those not yet logged in.
    pub max_per_address: usize,
    pub max_unauthenticated_per_address: usize,
    /// Load balancers (CIDR ranges) whose control connections start with a PROXY
    /// protocol header naming the client; empty: off.
    pub proxy_protocol: Vec<String>,
    /// TLS data connections must resume the control connection's TLS session.
    pub require_ssl_reuse: bool,
}

impl Default for FtpsSection {
    fn default() -> Self {
        FtpsSection {
            enabled: true,
            explicit_listen: EnvString("127.0.0.1:2121".into()),
            implicit_listen: EnvString("127.0.0.1:2990".into()),
            certificate: None,
            key: None,
            passive_ports: EnvString::default(),
            passive_address: EnvString::default(),
            allow_plain: false,
            max_sessions: 64,
            idle_timeout: HumanDuration(std::time::Duration::from_secs(600)),
            login_grace_time: HumanDuration(std::time::Duration::from_secs(30)),
            max_per_address: 32,
            max_unauthenticated_per_address: 24,
            proxy_protocol: Vec::new(),
            require_ssl_reuse: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksSection {
    /// The public address of the link server, used in printed and mailed links.
    pub base_url: EnvString,
    pub default_expiry: HumanDuration,
    /// Longest lifetime a link may have; empty: no cap.
    pub max_expiry: Option<HumanDuration>,
    pub allow_never: bool,
    pub require_password: bool,
    /// Days after a send link ends before its copies are deleted.
    pub retention_days: u32,
    /// How long what a visitor proved (password, e-mail code) lasts in their browser.
    pub grant_lifetime: HumanDuration,
    /// Mail the link's creator when a file is downloaded.
    pub notify_downloads: bool,
    /// Upload requests: mail the creator when an upload completes (the default
    /// for new requests; `--no-notify` turns it off per link).
    pub notify_uploads: bool,
    /// An upload whose name is taken: `rename` ("report (1).pdf") or `refuse`.
    pub upload_conflict: UploadConflict,
    /// Where browser uploads are staged until complete (default: `uploads/` in
    /// the data directory). Needs room for the uploads in progress.
    pub upload_staging: Option<EnvString>,
    /// Stage browser uploads on this connector instead (by name, e.g. the S3
    /// bucket every node reaches): an upload then continues on any node.
    pub upload_staging_connector: Option<Spanned<EnvString>>,
    /// The folder inside that connector (default `wharf-staging/`).
    pub upload_staging_prefix: Option<Spanned<EnvString>>,
    /// An unfinished upload untouched this long is dropped and its use given back.
    pub upload_abandon: HumanDuration,
    /// A download whose use was reserved but that was not seen alive this long
    /// (the server died under it) gives its use back.
    pub reservation_timeout: HumanDuration,
    /// The link signing key file (64 hex digits), the same on every node of a
    /// cluster; `${ENV}` works. Empty: `link-signing.key` made in the data directory.
    pub signing_key: Option<EnvString>,
}

/// What an upload whose name is taken becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadConflict {
    /// Published under the next free "name (n).ext".
    Rename,
    /// Refused with a clear error; the existing file stays.
    Refuse,
}

impl Default for LinksSection {
    fn default() -> Self {
        LinksSection {
            base_url: EnvString("http://127.0.0.1:8080".into()),
            default_expiry: HumanDuration(std::time::Duration::from_secs(7 * 86_400)),
            max_expiry: None,
            allow_never: true,
            require_password: false,
            retention_days: 30,
            grant_lifetime: HumanDuration(std::time::Duration::from_secs(8 * 3600)),
            notify_downloads: true,
            notify_uploads: true,
            upload_conflict: UploadConflict::Rename,
            upload_staging: None,
            upload_staging_connector: None,
            upload_staging_prefix: None,
            upload_abandon: HumanDuration(std::time::Duration::from_secs(24 * 3600)),
            reservation_timeout: HumanDuration(std::time::Duration::from_secs(15 * 60)),
            signing_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub enabled: bool,
    pub listen: EnvString,
    pub product_name: EnvString,
    /// A CSS colour for buttons.
    pub accent: EnvString,
    /// A PNG, JPEG or SVG file shown on every page; empty: none.
    pub logo: EnvString,
    pub max_connections: usize,
    /// PEM certificate chain and key: serve HTTPS (HTTP/1.1 and HTTP/2); empty: HTTP.
    pub tls_cert: EnvString,
    pub tls_key: EnvString,
    /// A plain HTTP listener that answers every request with a redirect to
    /// `[links] base_url`; empty: none.
    pub redirect_listen: EnvString,
    /// Most connections from one address, and those that have not yet sent a
    /// whole request.
    pub max_per_address: usize,
    pub max_unauthenticated_per_address: usize,
    /// A request's line and headers must arrive within this long.
    pub header_timeout: HumanDuration,
    /// A connection idle between requests is closed after this long.
    pub keepalive_timeout: HumanDuration,
    /// Reverse proxies (CIDR ranges) whose X-Forwarded-For / Forwarded /
    /// X-Forwarded-Proto headers are believed; empty: none.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            listen: EnvString("127.0.0.1:8080".into()),
            product_name: EnvString("wharf".into()),
            accent: EnvString("#0b6e4f".into()),
            logo: EnvString(String::new()),
            max_connections: 256,
            tls_cert: EnvString::default(),
            tls_key: EnvString::default(),
            redirect_listen: EnvString::default(),
            max_per_address: 128,
            max_unauthenticated_per_address: 64,
            header_timeout: HumanDuration(std::time::Duration::from_secs(20)),
            keepalive_timeout: HumanDuration(std::time::Duration::from_secs(15)),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    /// SMTP server; empty: messages are written to `outbox` instead.
    pub smtp_host: EnvString,
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit, usually port 465) or `none`.
    pub security: EnvString,
    pub username: EnvString,
    pub password: EnvString,
    pub from: EnvString,
    /// Where messages go without SMTP (relative to the data directory).
    pub outbox: EnvString,
    pub timeout: HumanDuration,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            smtp_host: EnvString(String::new()),
            smtp_port: 587,
            security: EnvString("starttls".into()),
            username: EnvString(String::new()),
            password: EnvString(String::new()),
            from: EnvString("wharf <wharf@localhost>".into()),
            outbox: EnvString("outbox".into()),
            timeout: HumanDuration(std::time::Duration::from_secs(30)),
        }
    }
}
