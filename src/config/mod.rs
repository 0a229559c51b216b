//! Configuration: one TOML file, or none at all.
//!
//! With no file, wharf runs on an embedded default inside the data directory
//! (`./wharf-data`): a local-disk connector `files` mounted at `/`, a local-disk
//! `transfers` store, the SQLite database, generated keys, and an `outbox/` for mail.
//! A file only needs the keys it changes. Every key is explained in
//! `config/wharf.example.toml`.

mod error;
mod file;
mod values;

pub use file::UploadConflict;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use wharf_connectors::{ConnectorSpec, Tuning};

use crate::vfs::VPath;

pub use error::ConfigError;
pub use file::LogFormat;
pub use values::{expand_env, ByteSize};

use file::FileConfig;
use values::EnvString;

/// `[links] upload_staging_prefix` unless set.
pub const UPLOAD_STAGING_PREFIX: &str = "wharf-staging";

/// Name of the connector that holds link copies unless `[transfers]` says otherwise.
pub const TRANSFERS: &str = "transfers";

/// `direct_download_lifetime` when the config does not set it.
pub const DEFAULT_DIRECT_DOWNLOAD_LIFETIME: Duration = Duration::from_secs(300);
/// Longest presigned GET: S3's limit for a SigV4 presigned URL.
const MAX_DIRECT_DOWNLOAD_LIFETIME: Duration = Duration::from_secs(7 * 86_400);
/// Services whose OpenDAL backend presigns reads.
const PRESIGNING_SCHEMES: [&str; 3] = ["s3", "gcs", "azblob"];

/// The configuration after defaults, validation and path resolution.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database, keys, default storage and outbox live.
    pub data_dir: PathBuf,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub connectors: Vec<ConnectorSpec>,
    /// Connectors with `direct_downloads = true`, and how long their presigned
    /// GETs work.
    pub direct_downloads: std::collections::BTreeMap<String, Duration>,
    /// Connectors with `direct_uploads = true` (S3, Azure Blob and GCS).
    pub direct_uploads: std::collections::BTreeSet<String>,
    pub mounts: Vec<MountSpec>,
    /// Connector and root where link copies are kept.
    pub transfers: MountSpec,
    pub buffer_size: usize,
    /// `[storage] buffer_budget`: memory all transfers' buffers may hold together.
    pub buffer_budget: usize,
    /// `[storage] setstat_mode`: attribute changes where storage keeps none.
    pub setstat_mode: crate::vfs::SetstatMode,
    /// `[storage] interrupted_uploads`: what a lost connection leaves of an upload.
    pub interrupted_uploads: crate::vfs::InterruptedUploads,
    pub tuning: Tuning,
    pub audit: AuditTuning,
    pub sftp: SftpConfig,
    pub defender: DefenderConfig,
    pub ftps: FtpsConfig,
    pub links: LinksConfig,
    pub http: HttpConfig,
    pub mail: MailConfig,
    pub metrics: MetricsConfig,
    /// `[database] url`: PostgreSQL instead of the SQLite file.
    pub database: Option<DatabaseUrl>,
}

/// A PostgreSQL URL; it may hold a password, so `Debug` shows it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL with its password masked, for messages.
    pub fn redacted(&self) -> String {
        crate::store::postgres::redact_url(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// `[http]`: the link server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub product_name: String,
    pub accent: String,
    pub logo: Option<PathBuf>,
    pub max_connections: usize,
    pub max_per_address: usize,
    /// Connections that have not yet sent a whole request.
    pub max_unauthenticated_per_address: usize,
    /// A total deadline for a request's head (slow-loris cannot stretch it).
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    /// HTTPS: PEM certificate chain and key (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP listener that redirects to `base_url`.
    pub redirect_listen: Option<SocketAddr>,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<crate::proxy::Cidr>,
}

/// `[metrics]`: `/metrics`, `/healthz`, `/readyz` on their own listener.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

/// `[links]`: shared links.
#[derive(Debug, Clone)]
pub struct LinksConfig {
    /// Without a trailing slash.
    pub base_url: String,
    pub policy: crate::policy::links::LinkPolicy,
    pub retention: Duration,
    pub grant_lifetime: Duration,
    pub notify_downloads: bool,
    pub notify_uploads: bool,
    pub upload_conflict: UploadConflict,
    /// Absolute.
    pub upload_staging: PathBuf,
    /// `upload_staging_connector`: stage on this connector instead of
    /// `upload_staging`, in the folder `upload_staging_prefix` (normalised,
    /// no leading slash).
    pub upload_staging_connector: Option<String>,
    pub upload_staging_prefix: String,
    pub upload_abandon: Duration,
    pub reservation_timeout: Duration,
    /// Absolute; `None`: generated in the data directory (one node only).
    pub signing_key: Option<PathBuf>,
}

/// Sizing of the audit pipeline.
#[derive(Debug, Clone, Copy)]
pub struct AuditTuning {
    /// Events that may wait in the channel before producers wait too.
    pub queue: usize,
    /// Most events written in one transaction.
    pub batch: usize,
}

/// SFTP SYMLINK and READLINK: `[sftp] symlinks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Symlinks {
    /// On fs, links are made and read inside the user's home only (both ends);
    /// elsewhere "operation unsupported".
    #[default]
    Confined,
    /// Always "operation unsupported".
    Refuse,
}

/// `[mail]`: SMTP, or an outbox folder of .eml files (the embedded default).
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp: Option<SmtpConfig>,
    pub from: String,
    pub outbox: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    StartTls,
    Tls,
    /// Plain SMTP: only for a relay on the same host or in tests.
    None,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SmtpConfig {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `[ftps]`: the FTPS listeners.
#[derive(Debug, Clone)]
pub struct FtpsConfig {
    pub enabled: bool,
    pub explicit_listen: Option<SocketAddr>,
    pub implicit_listen: Option<SocketAddr>,
    /// PEM files; `None`: `<data_dir>/ftps_cert.pem` and `ftps_key.pem`, generated
    /// self-signed on first start.
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub passive_ports: Option<std::ops::RangeInclusive<u16>>,
    pub passive_address: Option<std::net::IpAddr>,
    pub allow_plain: bool,
    pub max_sessions: usize,
    pub idle_timeout: Duration,
    pub login_grace_time: Duration,
    pub max_per_address: usize,
    pub max_unauthenticated_per_address: usize,
    /// Load balancers that send a PROXY protocol header; empty: off.
    pub proxy_protocol: Vec<crate::proxy::Cidr>,
    /// TLS data connections must resume the control connection's TLS session.
    pub require_ssl_reuse: bool,
}

/// `[sftp]`: the SSH/SFTP listener.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Empty: `<data_dir>/ssh_host_{ed25519,ecdsa,rsa}_key`, generated on first start.
    pub host_key: Vec<PathBuf>,
    pub max_sessions: usize,
    pub idle_timeout: Duration,
    pub max_handles: usize,
    pub auth_delay: Duration,
    pub login_grace_time: Duration,
    pub max_per_address: usize,
    pub max_unauthenticated_per_address: usize,
    /// Load balancers that send a PROXY protocol header; empty: off.
    pub proxy_protocol: Vec<crate::proxy::Cidr>,
    /// `[sftp] symlinks`: SYMLINK/READLINK confined to the home, or refused.
    pub symlinks: Symlinks,
}

/// `[defender]`: per-address lock-out after repeated failed logins.
#[derive(Debug, Clone, Copy)]
pub struct DefenderConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub ban: Duration,
}

/// One `[[mount]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub at: VPath,
    pub connector: String,
    pub root: String,
}

impl Config {
    /// Loads `file` (if given) with `data_dir` overriding the file's `data_dir`.
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let (parsed, text) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::plain(Some(path), format!("cannot read the file: {e}"))
                })?;
                let parsed: FileConfig =
                    toml::from_str(&text).map_err(|e| ConfigError::from_toml(path, &text, &e))?;
                (parsed, text)
            }
            None => (FileConfig::default(), String::new()),
        };
        Resolver { file, text: &text }.resolve(parsed, data_dir)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("wharf.db")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

/// Turns the parsed file into a [`Config`], reporting problems at their line.
struct Resolver<'a> {
    file: Option<&'a Path>,
    text: &'a str,
}

impl Resolver<'_> {
    fn err<T>(&self, at: &Spanned<T>, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.text, at.span().start, key, msg.into())
    }

    /// `direct_downloads` and `direct_download_lifetime` of connector `i`: the
    /// lifetime if on. Only services that can presign a GET may turn it on.
    fn direct_download(
        &self,
        i: usize,
        c: &file::ConnectorSection,
        scheme: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        let key = format!("connector[{i}].direct_download_lifetime");
        let lifetime = match &c.direct_download_lifetime {
            None => DEFAULT_DIRECT_DOWNLOAD_LIFETIME,
            Some(d) => {
                let t = d.get_ref().0;
                if t < Duration::from_secs(10) || t > MAX_DIRECT_DOWNLOAD_LIFETIME {
                    return Err(self.err(d, &key, "use between 10s and 7 days"));
                }
                t
            }
        };
        if !c.direct_downloads {
            return Ok(None);
        }
        if !PRESIGNING_SCHEMES.contains(&scheme) {
            return Err(self.err(
                &c.scheme,
                &format!("connector[{i}].direct_downloads"),
                format!(
                    "scheme {scheme:?} cannot presign downloads (direct_downloads needs one of: {})",
                    PRESIGNING_SCHEMES.join(", ")
                ),
            ));
        }
        Ok(Some(lifetime))
    }

    fn resolve(&self, f: FileConfig, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let data_dir = match (data_dir, &f.data_dir) {
            (Some(d), _) => d.to_path_buf(),
            (None, Some(d)) => self.relative_to_file(Path::new(&**d.get_ref())),
            (None, None) => PathBuf::from("./wharf-data"),
        };
        let defaults = f.connectors.is_empty() && f.mounts.is_empty();
        let mut connectors = Vec::new();
        let mut direct_downloads = std::collections::BTreeMap::new();
        let mut direct_uploads = std::collections::BTreeSet::new();
        for (i, c) in f.connectors.iter().enumerate() {
            let name = c.name.get_ref().to_string();
            let key = format!("connector[{i}].name");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
            {
                return Err(self.err(&c.name, &key, "use letters, digits, '-' and '_'"));
            }
            if connectors.iter().any(|o: &ConnectorSpec| o.name == name) {
                return Err(self.err(
                    &c.name,
                    &key,
                    format!("connector {name:?} is defined twice"),
                ));
            }
            let scheme = c.scheme.get_ref().to_string();
            if !wharf_connectors::compiled_schemes().contains(&scheme.as_str()) {
                return Err(self.err(
                    &c.scheme,
                    &format!("connector[{i}].scheme"),
                    format!(
                        "scheme {scheme:?} is not in this build (available: {})",
                        wharf_connectors::compiled_schemes().join(", ")
                    ),
                ));
            }
            let mut options: std::collections::BTreeMap<String, String> = c
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            if scheme == "fs" {
                let root = options.get("root").ok_or_else(|| {
                    self.err(
                        &c.scheme,
                        &format!("connector[{i}].options.root"),
                        "an fs connector needs options.root",
                    )
                })?;
                let abs = absolute(&data_dir, Path::new(root));
                options.insert("root".into(), abs.display().to_string());
            }
            if let Some(lifetime) = self.direct_download(i, c, &scheme)? {
                direct_downloads.insert(name.clone(), lifetime);
            }
            if c.direct_uploads {
                // Presigned parts: S3 multipart parts, Azure Blob blocks, GCS
                // part objects by resumable session; the others stay on tus.
                if !["s3", "azblob", "gcs"].contains(&scheme.as_str()) {
                    return Err(self.err(
                        &c.scheme,
                        &format!("connector[{i}].direct_uploads"),
                        format!(
                            "scheme {scheme:?} cannot take direct uploads (s3, azblob and gcs only)"
                        ),
                    ));
                }
                direct_uploads.insert(name.clone());
            }
            connectors.push(ConnectorSpec {
                name,
                scheme,
                options,
            });
        }
        if defaults {
            connectors.push(fs_connector("files", &data_dir.join("files")));
        }
        if !connectors.iter().any(|c| c.name == TRANSFERS) && f.transfers.connector.is_none() {
            connectors.push(fs_connector(TRANSFERS, &data_dir.join("transfers")));
        }

        let mut mounts: Vec<MountSpec> = Vec::new();
        for (i, m) in f.mounts.iter().enumerate() {
            let at = VPath::parse(m.path.get_ref())
                .map_err(|e| self.err(&m.path, &format!("mount[{i}].path"), e.to_string()))?;
            if mounts.iter().any(|o| o.at == at) {
                return Err(self.err(
                    &m.path,
                    &format!("mount[{i}].path"),
                    format!("{at} is mounted twice"),
                ));
            }
            let connector =
                self.known_connector(&connectors, &m.connector, &format!("mount[{i}].connector"))?;
            let root = self.root(m.root.as_ref(), &format!("mount[{i}].root"))?;
            mounts.push(MountSpec {
                at,
                connector,
                root,
            });
        }
        if defaults {
            mounts.push(MountSpec {
                at: VPath::root(),
                connector: "files".into(),
                root: String::new(),
            });
        }
        if mounts.is_empty() {
            return Err(ConfigError::plain(
                self.file,
                "key `mount`: connectors are defined but nothing is mounted; add a [[mount]]"
                    .into(),
            ));
        }

        let transfers = MountSpec {
            at: VPath::root(),
            connector: match &f.transfers.connector {
                Some(c) => self.known_connector(&connectors, c, "transfers.connector")?,
                None => TRANSFERS.into(),
            },
            root: self.root(f.transfers.root.as_ref(), "transfers.root")?,
        };

        let buffer = f.storage.buffer_size.0;
        if !(4096..=(64 << 20)).contains(&buffer) {
            return Err(ConfigError::plain(
                self.file,
                format!("key `storage.buffer_size`: {buffer} is outside 4KiB..64MiB"),
            ));
        }
        let budget = f.storage.buffer_budget.0;
        if !((1 << 20)..=(1 << 40)).contains(&budget) || budget < buffer {
            return Err(ConfigError::plain(
                self.file,
                format!("key `storage.buffer_budget`: {budget} is outside 1MiB..1TiB or below `storage.buffer_size`"),
            ));
        }
        let mail = self.mail(&f.mail, &data_dir)?;
        let signing_key = match &f.links.signing_key {
            Some(p) if !p.is_empty() => Some(absolute(&data_dir, Path::new(&**p))),
            _ => None,
        };
        let upload_staging = match &f.links.upload_staging {
            Some(p) if !p.is_empty() => absolute(&data_dir, Path::new(&**p)),
            _ => data_dir.join("uploads"),
        };
        let upload_staging_connector = match &f.links.upload_staging_connector {
            Some(c) if !c.get_ref().is_empty() => {
                Some(self.known_connector(&connectors, c, "links.upload_staging_connector")?)
            }
            _ => None,
        };
        let upload_staging_prefix = match &f.links.upload_staging_prefix {
            Some(p) => self.root(Some(p), "links.upload_staging_prefix")?,
            None => UPLOAD_STAGING_PREFIX.to_string(),
        };
        if let Some(c) = &upload_staging_connector {
            // Visitors' unfinished bytes must not show in anyone's files.
            let inside = |root: &str| {
                root.is_empty()
                    || upload_staging_prefix == root
                    || upload_staging_prefix.starts_with(&format!("{root}/"))
            };
            if let Some(m) = mounts.iter().find(|m| &m.connector == c && inside(&m.root)) {
                let at = f
                    .links
                    .upload_staging_prefix
                    .as_ref()
                    .or(f.links.upload_staging_connector.as_ref())
                    .expect("set");
                return Err(self.err(
                    at,
                    "links.upload_staging_prefix",
                    format!(
                        "the staging folder {upload_staging_prefix:?} of connector {c:?} would be visible in mount {}; use a folder (or a bucket) no mount shows",
                        m.at
                    ),
                ));
            }
        }
        if upload_staging_connector.is_some() && upload_staging_prefix.is_empty() {
            let p = f.links.upload_staging_prefix.as_ref().expect("set");
            return Err(self.err(
                p,
                "links.upload_staging_prefix",
                "staging needs a folder of its own inside the connector (e.g. \"wharf-staging/\")",
            ));
        }
        Ok(Config {
            data_dir,
            source: self.file.map(Path::to_path_buf),
            log_level: f.log.level.to_string(),
            log_format: f.log.format,
            connectors,
            direct_downloads,
            direct_uploads,
            mounts,
            transfers,
            buffer_size: buffer as usize,
            buffer_budget: budget as usize,
            setstat_mode: f.storage.setstat_mode,
            interrupted_uploads: f.storage.interrupted_uploads,
            tuning: Tuning {
                timeout: nonzero(f.storage.timeout.0),
                io_timeout: nonzero(f.storage.io_timeout.0),
                max_retries: f.storage.max_retries,
            },
            audit: AuditTuning {
                queue: f.audit.queue.max(1),
                batch: f.audit.batch.max(1),
            },
            sftp: SftpConfig {
                enabled: f.sftp.enabled,
                listen: parse_listen(&f.sftp.listen, self.file, "sftp.listen")?,
                host_key: f
                    .sftp
                    .host_key
                    .0
                    .iter()
                    .filter(|k| !k.is_empty())
                    .map(|k| self.relative_to_file(Path::new(&**k)))
                    .collect(),
                max_sessions: f.sftp.max_sessions.max(1),
                idle_timeout: nonzero(f.sftp.idle_timeout.0),
                max_handles: f.sftp.max_handles.max(1),
                auth_delay: f.sftp.auth_delay.0,
                login_grace_time: nonzero(f.sftp.login_grace_time.0),
                max_per_address: f.sftp.max_per_address.max(1),
                max_unauthenticated_per_address: f
                    .sftp
                    .max_unauthenticated_per_address
                    .clamp(1, f.sftp.max_per_address.max(1)),
                proxy_protocol: self.cidrs(&f.sftp.proxy_protocol, "sftp.proxy_protocol")?,
                symlinks: f.sftp.symlinks,
            },
            defender: DefenderConfig {
                max_failures: f.defender.max_failures,
                window: nonzero(f.defender.window.0),
                ban: f.defender.ban.0,
            },
            ftps: self.ftps(&f.ftps)?,
            links: LinksConfig {
                base_url: f.links.base_url.trim_end_matches('/').to_string(),
                policy: crate::policy::links::LinkPolicy {
                    max_expiry: f.links.max_expiry.map(|d| d.0),
                    allow_never: f.links.allow_never,
                    require_password: f.links.require_password,
                    default_expiry: nonzero(f.links.default_expiry.0),
                },
                retention: Duration::from_secs(u64::from(f.links.retention_days) * 86_400),
                grant_lifetime: nonzero(f.links.grant_lifetime.0),
                notify_downloads: f.links.notify_downloads,
                notify_uploads: f.links.notify_uploads,
                upload_conflict: f.links.upload_conflict,
                upload_staging,
                upload_staging_connector,
                upload_staging_prefix,
                upload_abandon: nonzero(f.links.upload_abandon.0),
                reservation_timeout: nonzero(f.links.reservation_timeout.0),
                signing_key,
            },
            http: HttpConfig {
                enabled: f.http.enabled,
                listen: parse_listen(&f.http.listen, self.file, "http.listen")?,
                product_name: f.http.product_name.to_string(),
                accent: check_colour(&f.http.accent, self.file)?,
                logo: (!f.http.logo.is_empty())
                    .then(|| self.relative_to_file(Path::new(&*f.http.logo))),
                max_connections: f.http.max_connections.max(1),
                tls_cert: self.optional_path(&f.http.tls_cert),
                tls_key: self.optional_path(&f.http.tls_key),
                redirect_listen: self
                    .optional_listen(&f.http.redirect_listen, "http.redirect_listen")?,
                max_per_address: f.http.max_per_address.max(1),
                max_unauthenticated_per_address: f
                    .http
                    .max_unauthenticated_per_address
                    .clamp(1, f.http.max_per_address.max(1)),
                header_timeout: nonzero(f.http.header_timeout.0),
                keepalive_timeout: nonzero(f.http.keepalive_timeout.0),
                trusted_proxies: self.cidrs(&f.http.trusted_proxies, "http.trusted_proxies")?,
            },
            mail,
            metrics: MetricsConfig {
                listen: self.optional_listen(&f.metrics.listen, "metrics.listen")?,
            },
            database: self.database(f.database.as_ref())?,
        })
        .and_then(|c| self.check_ops(c))
    }

    /// `[database] url` must be a `postgres://` or `postgresql://` URL.
    fn database(
        &self,
        d: Option<&file::DatabaseSection>,
    ) -> Result<Option<DatabaseUrl>, ConfigError> {
        let Some(d) = d else { return Ok(None) };
        let url = DatabaseUrl(d.url.0.trim().to_string());
        if !(url.0.starts_with("postgresql://") || url.0.starts_with("postgres://")) {
            return Err(ConfigError::plain(
                self.file,
                format!(
                    "`database.url` must start with postgresql:// (got {})",
                    url.redacted()
                ),
            ));
        }
        Ok(Some(url))
    }

    /// `[http]` TLS keys go together; a redirect only makes sense to HTTPS.
    fn check_ops(&self, c: Config) -> Result<Config, ConfigError> {
        if c.http.tls_cert.is_some() != c.http.tls_key.is_some() {
            return Err(ConfigError::plain(
                self.file,
                "keys `http.tls_cert` and `http.tls_key` go together".into(),
            ));
        }
        if c.http.redirect_listen.is_some() && !c.links.base_url.starts_with("https://") {
            return Err(ConfigError::plain(
                self.file,
                "key `http.redirect_listen`: redirects go to `links.base_url`, which must start with https://".into(),
            ));
        }
        Ok(c)
    }

    fn optional_path(&self, p: &str) -> Option<PathBuf> {
        (!p.is_empty()).then(|| self.relative_to_file(Path::new(p)))
    }

    fn optional_listen(&self, v: &str, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
        if v.is_empty() {
            Ok(None)
        } else {
            parse_listen(v, self.file, key).map(Some)
        }
    }

    fn mail(&self, f: &file::MailSection, data_dir: &Path) -> Result<MailConfig, ConfigError> {
        let security = match &*f.security {
            "starttls" => MailSecurity::StartTls,
            "tls" => MailSecurity::Tls,
            "none" => MailSecurity::None,
            other => {
                return Err(ConfigError::plain(
                    self.file,
                    format!("key `mail.security`: {other:?} is not starttls, tls or none"),
                ))
            }
        };
        let smtp = (!f.smtp_host.is_empty()).then(|| SmtpConfig {
            host: f.smtp_host.to_string(),
            port: f.smtp_port,
            security,
            username: f.username.to_string(),
            password: f.password.to_string(),
        });
        Ok(MailConfig {
            smtp,
            from: f.from.to_string(),
            outbox: absolute(data_dir, Path::new(&*f.outbox)),
            timeout: nonzero(f.timeout.0),
        })
    }

    fn ftps(&self, f: &file::FtpsSection) -> Result<FtpsConfig, ConfigError> {
        let listen = |v: &str, key: &str| -> Result<Option<SocketAddr>, ConfigError> {
            if v.is_empty() {
                Ok(None)
            } else {
                parse_listen(v, self.file, key).map(Some)
            }
        };
        let passive_ports = if f.passive_ports.is_empty() {
            None
        } else {
            let bad = || {
                ConfigError::plain(
                    self.file,
                    format!(
                        "key `ftps.passive_ports`: {:?} is not a range such as 50000-50100",
                        &*f.passive_ports
                    ),
                )
            };
            let (a, b) = f.passive_ports.split_once('-').ok_or_else(bad)?;
            let (a, b): (u16, u16) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a == 0 || a > b {
                return Err(bad());
            }
            Some(a..=b)
        };
        let passive_address = if f.passive_address.is_empty() {
            None
        } else {
            Some(f.passive_address.parse().map_err(|_| {
                ConfigError::plain(
                    self.file,
                    format!(
                        "key `ftps.passive_address`: {:?} is not an IP address",
                        &*f.passive_address
                    ),
                )
            })?)
        };
        let path = |p: &Option<EnvString>| {
            p.as_ref()
                .filter(|p| !p.is_empty())
                .map(|p| self.relative_to_file(Path::new(&**p)))
        };
        let (certificate, key) = (path(&f.certificate), path(&f.key));
        if certificate.is_some() != key.is_some() {
            return Err(ConfigError::plain(
                self.file,
                "keys `ftps.certificate` and `ftps.key` go together".into(),
            ));
        }
        Ok(FtpsConfig {
            enabled: f.enabled,
            explicit_listen: listen(&f.explicit_listen, "ftps.explicit_listen")?,
            implicit_listen: listen(&f.implicit_listen, "ftps.implicit_listen")?,
            certificate,
            key,
            passive_ports,
            passive_address,
            allow_plain: f.allow_plain,
            max_sessions: f.max_sessions.max(1),
            idle_timeout: nonzero(f.idle_timeout.0),
            login_grace_time: nonzero(f.login_grace_time.0),
            max_per_address: f.max_per_address.max(1),
            max_unauthenticated_per_address: f
                .max_unauthenticated_per_address
                .clamp(1, f.max_per_address.max(1)),
            proxy_protocol: self.cidrs(&f.proxy_protocol, "ftps.proxy_protocol")?,
            require_ssl_reuse: f.require_ssl_reuse,
        })
    }

    /// A list of CIDR ranges; the error names the key and the bad entry.
    fn cidrs(&self, items: &[String], key: &str) -> Result<Vec<crate::proxy::Cidr>, ConfigError> {
        crate::proxy::parse_list(items)
            .map_err(|e| ConfigError::plain(self.file, format!("key `{key}`: {e}")))
    }

    fn known_connector(
        &self,
        connectors: &[ConnectorSpec],
        name: &Spanned<EnvString>,
        key: &str,
    ) -> Result<String, ConfigError> {
        let n = name.get_ref().to_string();
        if connectors.iter().any(|c| c.name == n) {
            Ok(n)
        } else {
            let known: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            Err(self.err(
                name,
                key,
                format!("no connector named {n:?} (defined: {})", known.join(", ")),
            ))
        }
    }

    fn root(&self, root: Option<&Spanned<EnvString>>, key: &str) -> Result<String, ConfigError> {
        match root {
            None => Ok(String::new()),
            Some(r) => VPath::parse(r.get_ref())
                .map(|v| v.as_str().trim_start_matches('/').to_string())
                .map_err(|e| self.err(r, key, e.to_string())),
        }
    }

    fn relative_to_file(&self, p: &Path) -> PathBuf {
        match self.file.and_then(Path::parent) {
            Some(dir) if p.is_relative() && !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// A CSS colour goes into the pages' style: only `#rgb`/`#rrggbb` or a plain name.
fn check_colour(value: &str, file: Option<&Path>) -> Result<String, ConfigError> {
    let hex = value.len() > 1
        && value.starts_with('#')
        && matches!(value.len(), 4 | 7)
        && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
    let name = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphabetic());
    if hex || name {
        Ok(value.to_string())
    } else {
        Err(ConfigError::plain(
            file,
            format!("key `http.accent`: {value:?} is not a colour such as #0b6e4f"),
        ))
    }
}

fn parse_listen(value: &str, file: Option<&Path>, key: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::plain(
            file,
            format!("key `{key}`: {value:?} is not an address such as 127.0.0.1:2022"),
        )
    })
}

fn fs_connector(name: &str, root: &Path) -> ConnectorSpec {
    ConnectorSpec {
        name: name.into(),
        scheme: "fs".into(),
        options: [("root".to_string(), root.display().to_string())].into(),
    }
}

/// Relative fs roots are taken from the data directory, so a config file works
/// wherever wharf is started from.
fn absolute(data_dir: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests;
