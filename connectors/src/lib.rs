//! wharf storage connectors: a `[[connector]]` config entry becomes an Apache OpenDAL
//! [`Operator`] wrapped in retry, timeout and logging layers.
//!
//! Which services exist is decided at compile time by cargo features (`fs`, `memory`,
//! `s3`, `gcs`, `azblob`, `webdav`, all on by default; a build can leave out the
//! clients it does not need). Everything above this crate talks to storage through the
//! returned operator and never names a service.

mod gcs;
mod logging;
mod timing;

pub use gcs::{gcs_bucket, GcsBucket};
pub use timing::set_timing_hook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use http;
pub use opendal;
use opendal::layers::{LoggingLayer, RetryLayer, TimeoutLayer};
use opendal::{Capability, Operator};

/// Directory inside an `fs` connector root where uploads are staged until complete.
/// The Vfs hides it and refuses any path into it.
pub const PARTIAL_DIR: &str = ".wharf-partial";

/// One connector as the configuration describes it (env references already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSpec {
    /// Name used by mounts and the CLI.
    pub name: String,
    /// OpenDAL scheme: `fs`, `memory`, `s3`, ...
    pub scheme: String,
    /// Service options passed to OpenDAL as-is (`root`, `bucket`, `endpoint`, ...).
    pub options: BTreeMap<String, String>,
}

/// Timeouts and retries applied to every operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Deadline for a non-streaming call (stat, delete, list page, ...).
    pub timeout: Duration,
    /// Deadline for one chunk of a streaming read or write: a stalled backend fails
    /// the transfer instead of holding it forever.
    pub io_timeout: Duration,
    /// Retries of a temporary failure, with exponential back-off and jitter.
    pub max_retries: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(30),
            max_retries: 3,
        }
    }
}

/// A built connector: the layered operator plus what wharf must know about the service.
#[derive(Debug, Clone)]
pub struct Connector {
    pub name: String,
    pub scheme: String,
    pub operator: Operator,
    /// Canonical root directory for the `fs` service: the Vfs uses it to refuse
    /// symlinks that lead out of the root, which OpenDAL itself would follow.
    pub local_root: Option<PathBuf>,
    /// Where uploads to the `fs` service are staged until complete (canonical; on
    /// the same filesystem as the root, so publishing is a rename).
    pub staging_dir: Option<PathBuf>,
    /// Whether each request crosses a network (anything but `fs` and `memory`): the
    /// Vfs then reads a range as one streamed request and uploads parts
    /// concurrently, since a round trip per chunk would cap throughput at
    /// chunk size ÷ latency.
    pub remote: bool,
    /// Link downloads from this connector answer 303 to a presigned GET that
    /// works this long (`direct_downloads` in its config); `None`: proxied.
    pub direct_download: Option<Duration>,
    /// Browsers upload straight to this bucket with presigned part URLs
    /// (`direct_uploads = true`: S3 multipart parts, Azure Blob blocks, GCS
    /// part objects sent through resumable upload sessions);
    /// `None`: through wharf (tus).
    pub direct_upload: Option<DirectUpload>,
}

/// What wharf needs to sign the calls of direct uploads by hand, by service.
#[derive(Debug, Clone)]
pub enum DirectUpload {
    S3(S3Bucket),
    Azure(AzureContainer),
    Gcs(GcsBucket),
}

/// The service a connector takes direct uploads into, from its spec: an
/// `s3` bucket, an `azblob` container or a `gcs` bucket (others cannot).
pub fn direct_upload(spec: &ConnectorSpec) -> Result<DirectUpload, String> {
    match spec.scheme.as_str() {
        "s3" => s3_bucket(spec).map(DirectUpload::S3),
        "azblob" => azure_container(spec).map(DirectUpload::Azure),
        "gcs" => gcs_bucket(spec).map(DirectUpload::Gcs),
        other => Err(format!("scheme {other:?} cannot take direct uploads")),
    }
}

/// What signing Azure Blob requests by hand needs (Shared Key for wharf's
/// own calls, service SAS for the browser's): where the container is and the
/// account key.
#[derive(Clone)]
pub struct AzureContainer {
    /// The Blob service endpoint without a trailing slash:
    /// `https://<account>.blob.core.windows.net`, or an emulator's
    /// `http://127.0.0.1:10000/<account>` (path style).
    pub endpoint: String,
    pub container: String,
    pub account_name: String,
    /// The account key as given (base64).
    pub account_key: String,
    /// Prefix of every blob name (the connector's `root`, `""` or `a/b/`).
    pub root: String,
}

impl std::fmt::Debug for AzureContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureContainer")
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("account_name", &self.account_name)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A connector's `root` as the prefix of its keys: `""`, or `a/b/` whatever
/// slashes surround it in the options.
pub fn key_prefix(root: &str) -> String {
    let root = root.trim_matches('/');
    if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    }
}

/// The container of an `azblob` connector as [`AzureContainer`]: it needs the
/// account name and key in the options (a SAS token or a managed identity
/// cannot sign the browser's part URLs; the error says so).
pub fn azure_container(spec: &ConnectorSpec) -> Result<AzureContainer, String> {
    if spec.scheme != "azblob" {
        return Err(format!("scheme {:?} is not azblob", spec.scheme));
    }
    let opt = |k: &str| spec.options.get(k).filter(|v| !v.is_empty()).cloned();
    let container = opt("container").ok_or("options.container is missing")?;
    let (Some(account_name), Some(account_key)) = (opt("account_name"), opt("account_key")) else {
        return Err(
            "direct uploads need the account key: options.account_name and options.account_key"
                .into(),
        );
    };
    let endpoint = opt("endpoint")
        .unwrap_or_else(|| format!("https://{account_name}.blob.core.windows.net"))
        .trim_end_matches('/')
        .to_string();
    let root = key_prefix(&opt("root").unwrap_or_default());
    Ok(AzureContainer {
        endpoint,
        container,
        account_name,
        account_key,
        root,
    })
}

/// What signing S3 requests by hand needs (wharf signs the multipart calls
/// OpenDAL does not presign): where the bucket is and the key to sign with.
#[derive(Clone)]
pub struct S3Bucket {
    /// `scheme://host[:port]` without a trailing slash.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Prefix of every key (the connector's `root`, `""` or `a/b/`).
    pub root: String,
    /// `https://<bucket>.<host>/` rather than `https://<host>/<bucket>/`.
    pub virtual_host: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// The bucket of an `s3` connector as [`S3Bucket`], its static credentials
/// from the options or the `AWS_*` environment (others, such as instance
/// roles, are not read here: the error says so).
pub fn s3_bucket(spec: &ConnectorSpec) -> Result<S3Bucket, String> {
    if spec.scheme != "s3" {
        return Err(format!("scheme {:?} is not s3", spec.scheme));
    }
    let opt = |k: &str| spec.options.get(k).filter(|v| !v.is_empty()).cloned();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let bucket = opt("bucket").ok_or("options.bucket is missing")?;
    let region = opt("region")
        .or_else(|| env("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = opt("endpoint")
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"))
        .trim_end_matches('/')
        .to_string();
    let (access_key_id, secret_access_key, session_token) =
        match (opt("access_key_id"), opt("secret_access_key")) {
            (Some(k), Some(s)) => (k, s, opt("session_token")),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(k), Some(s)) => (k, s, env("AWS_SESSION_TOKEN")),
                _ => {
                    return Err(
                        "direct uploads need static credentials: options.access_key_id and \
                         options.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                            .into(),
                    )
                }
            },
        };
    let root = key_prefix(&opt("root").unwrap_or_default());
    Ok(S3Bucket {
        endpoint,
        bucket,
        region,
        root,
        virtual_host: opt("enable_virtual_host_style").is_some_and(|v| v == "true"),
        access_key_id,
        secret_access_key,
        session_token,
    })
}

/// Why a connector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("connector {name:?}: scheme {scheme:?} is not compiled into this build (available: {available})")]
    UnknownScheme {
        name: String,
        scheme: String,
        available: String,
    },
    #[error("connector {name:?}: option {option:?} is required for scheme {scheme:?}")]
    MissingOption {
        name: String,
        scheme: String,
        option: &'static str,
    },
    #[error("connector {name:?}: {source}")]
    Build {
        name: String,
        #[source]
        source: opendal::Error,
    },
}

/// Schemes this build can serve, in the order they are listed to users.
pub fn compiled_schemes() -> Vec<&'static str> {
    let mut schemes = Vec::new();
    if cfg!(feature = "fs") {
        schemes.push("fs");
    }
    if cfg!(feature = "memory") {
        schemes.push("memory");
    }
    if cfg!(feature = "s3") {
        schemes.push("s3");
    }
    if cfg!(feature = "gcs") {
        schemes.push("gcs");
    }
    if cfg!(feature = "azblob") {
        schemes.push("azblob");
    }
    if cfg!(feature = "webdav") {
        schemes.push("webdav");
    }
    schemes
}

/// Builds the operator for one connector entry.
///
/// For `fs`, uploads are staged in [`PARTIAL_DIR`] under the root unless
/// `atomic_write_dir` is given, so a file appears only once it is complete.
pub fn build(spec: &ConnectorSpec, tuning: &Tuning) -> Result<Connector, ConnectorError> {
    if !compiled_schemes().contains(&spec.scheme.as_str()) {
        return Err(ConnectorError::UnknownScheme {
            name: spec.name.clone(),
            scheme: spec.scheme.clone(),
            available: compiled_schemes().join(", "),
        });
    }
    let mut options = spec.options.clone();
    let mut local_root = None;
    let mut staging_dir = None;
    if spec.scheme == "fs" {
        let root = options
            .get("root")
            .cloned()
            .ok_or_else(|| ConnectorError::MissingOption {
                name: spec.name.clone(),
                scheme: spec.scheme.clone(),
                option: "root",
            })?;
        let staging = options
            .entry("atomic_write_dir".into())
            .or_insert_with(|| Path::new(&root).join(PARTIAL_DIR).display().to_string());
        staging_dir = Some(PathBuf::from(staging.as_str()));
        local_root = Some(PathBuf::from(root));
        // Partial uploads are nobody else's business: an existing root gets its
        // staging directory owner-only (OpenDAL would create it with the umask).
        if let (Some(root), Some(staging)) = (&local_root, &staging_dir) {
            if root.is_dir() && !staging.exists() {
                use std::os::unix::fs::DirBuilderExt;
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(staging);
            }
        }
    }
    let build_err = |source| ConnectorError::Build {
        name: spec.name.clone(),
        source,
    };
    let operator = Operator::via_iter(&spec.scheme, options).map_err(build_err)?;
    // OpenDAL created the root and the staging directory while building; resolve
    // them the same way so symlink checks compare like with like.
    let canonical = |dir: Option<PathBuf>, what: &'static str| {
        dir.map(|d| d.canonicalize()).transpose().map_err(|e| {
            build_err(opendal::Error::new(opendal::ErrorKind::Unexpected, what).set_source(e))
        })
    };
    let local_root = canonical(local_root, "cannot resolve fs root")?;
    let staging_dir = canonical(staging_dir, "cannot resolve fs atomic_write_dir")?;
    let mut operator = operator.layer(
        TimeoutLayer::new()
            .with_timeout(tuning.timeout)
            .with_io_timeout(tuning.io_timeout),
    );
    let remote = !matches!(spec.scheme.as_str(), "fs" | "memory");
    // OpenDAL marks every unrecognised local I/O error as temporary, so on a local
    // disk a permanent error (ENAMETOOLONG, ENOSPC) would be retried with back-off
    // while the client waits. Retries are for services across a network.
    if spec.scheme != "fs" {
        operator = operator.layer(
            RetryLayer::new()
                .with_max_times(tuning.max_retries)
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_jitter(),
        );
    }
    let operator = operator
        .layer(LoggingLayer::new(logging::StorageLog))
        // Outermost: the time a caller waits, retries included.
        .layer(timing::TimingLayer {
            connector: spec.name.as_str().into(),
        });
    Ok(Connector {
        name: spec.name.clone(),
        scheme: spec.scheme.clone(),
        operator,
        local_root,
        staging_dir,
        remote,
        direct_download: None,
        direct_upload: None,
    })
}

/// The capabilities worth showing an operator, by name, for `wharf connector check`.
pub fn capability_summary(cap: &Capability) -> Vec<(&'static str, bool)> {
    vec![
        ("stat", cap.stat),
        ("read", cap.read),
        ("write", cap.write),
        ("write_can_multi", cap.write_can_multi),
        ("write_can_append", cap.write_can_append),
        ("create_dir", cap.create_dir),
        ("delete", cap.delete),
        ("list", cap.list),
        ("list_with_recursive", cap.list_with_recursive),
        ("copy", cap.copy),
        ("rename", cap.rename),
        ("presign_read", cap.presign_read),
        ("presign_write", cap.presign_write),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scheme: &str, options: &[(&str, &str)]) -> ConnectorSpec {
        ConnectorSpec {
            name: "t".into(),
            scheme: scheme.into(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn s3_bucket_reads_the_options() {
        let b = s3_bucket(&spec(
            "s3",
            &[
                ("bucket", "files"),
                ("region", "eu-central-1"),
                ("root", "/a/b"),
                ("access_key_id", "k"),
                ("secret_access_key", "s"),
            ],
        ))
        .unwrap();
        assert_eq!(b.endpoint, "https://s3.eu-central-1.amazonaws.com");
        assert_eq!(b.root, "a/b/");
        assert!(!b.virtual_host);
        assert!(!format!("{b:?}").contains("\"s\""), "no secret in Debug");
        let b = s3_bucket(&spec(
            "s3",
            &[
                ("bucket", "files"),
                ("endpoint", "http://127.0.0.1:9000/"),
                ("enable_virtual_host_style", "true"),
                ("access_key_id", "k"),
                ("secret_access_key", "s"),
            ],
        ))
        .unwrap();
        assert_eq!(
            (b.endpoint.as_str(), b.root.as_str()),
            ("http://127.0.0.1:9000", "")
        );
        assert!(b.virtual_host);
        assert!(s3_bucket(&spec("fs", &[("root", "/x")])).is_err());
    }

    #[test]
    fn unknown_scheme_names_the_available_ones() {
        let err = build(&spec("nosuch", &[]), &Tuning::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("nosuch") && msg.contains("memory"), "{msg}");
    }

    #[test]
    fn fs_requires_root() {
        let err = build(&spec("fs", &[]), &Tuning::default()).unwrap_err();
        assert!(err.to_string().contains("\"root\""), "{err}");
    }

    #[test]
    fn fs_gets_a_staging_dir_and_canonical_root() {
        let dir = std::env::temp_dir().join(format!("wharf-conn-{}", std::process::id()));
        let c = build(
            &spec("fs", &[("root", dir.to_str().unwrap())]),
            &Tuning::default(),
        )
        .unwrap();
        assert!(dir.join(PARTIAL_DIR).is_dir());
        assert!(!c.remote);
        assert_eq!(c.local_root.unwrap(), dir.canonicalize().unwrap());
        assert_eq!(
            c.staging_dir.unwrap(),
            dir.join(PARTIAL_DIR).canonicalize().unwrap()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn memory_builds_and_reports_capabilities() {
        let c = build(&spec("memory", &[]), &Tuning::default()).unwrap();
        let caps = capability_summary(&c.operator.info().capability());
        assert!(caps.contains(&("write", true)));
    }

    #[test]
    fn only_network_services_are_remote() {
        assert!(
            !build(&spec("memory", &[]), &Tuning::default())
                .unwrap()
                .remote
        );
        let s3 = spec(
            "s3",
            &[
                ("bucket", "b"),
                ("region", "us-east-1"),
                ("endpoint", "http://127.0.0.1:9"),
            ],
        );
        assert!(build(&s3, &Tuning::default()).unwrap().remote);
    }
}
