//! What direct uploads into a GCS bucket need beyond the OpenDAL operator:
//! where the bucket is, and a way to authorize the one JSON API call wharf
//! makes by hand (starting a resumable upload session, which OpenDAL does
//! not expose). The authorization is OpenDAL's own: the same reqsign
//! credential chain its gcs service builds from the same options (`token`,
//! `credential`, `credential_path`, `service_account`, the environment and
//! the VM metadata server), so a connector that works for OpenDAL works here.

use super::ConnectorSpec;

/// A GCS bucket taking direct uploads.
#[derive(Clone)]
pub struct GcsBucket {
    /// The service endpoint without a trailing slash
    /// (`https://storage.googleapis.com`, or an emulator's).
    pub endpoint: String,
    pub bucket: String,
    /// Prefix of every object name (the connector's `root`, `""` or `a/b/`).
    pub root: String,
    /// The origin of wharf's pages (`[links] base_url`), sent on the call
    /// that starts a session: GCS answers the browser's CORS requests on a
    /// session only for the origin that started it.
    pub origin: Option<String>,
    #[cfg(feature = "gcs")]
    signer: Option<reqsign_core::Signer<reqsign_google::Credential>>,
}

impl std::fmt::Debug for GcsBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsBucket")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl GcsBucket {
    /// Sets [`GcsBucket::origin`] from the URL of wharf's pages (its
    /// `scheme://host[:port]`; nothing for an empty or odd URL).
    pub fn set_page_origin(&mut self, base_url: &str) {
        self.origin = base_url.split_once("://").and_then(|(scheme, rest)| {
            let scheme = scheme.to_ascii_lowercase();
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let fit = (scheme == "https" || scheme == "http")
                && !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-_[]".contains(&b));
            fit.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
        });
    }

    /// Adds the `Authorization` OpenDAL would send to `parts` (nothing when
    /// the connector skips signing, as against an emulator).
    pub async fn authorize(&self, parts: &mut http::request::Parts) -> Result<(), String> {
        #[cfg(feature = "gcs")]
        if let Some(signer) = &self.signer {
            signer
                .sign(parts, None)
                .await
                .map_err(|e| format!("no credentials for the bucket: {e}"))?;
        }
        let _ = parts;
        Ok(())
    }
}

/// The bucket of a `gcs` connector as [`GcsBucket`].
pub fn gcs_bucket(spec: &ConnectorSpec) -> Result<GcsBucket, String> {
    if spec.scheme != "gcs" {
        return Err(format!("scheme {:?} is not gcs", spec.scheme));
    }
    let opt = |k: &str| spec.options.get(k).filter(|v| !v.is_empty()).cloned();
    let bucket = opt("bucket").ok_or("options.bucket is missing")?;
    let endpoint = opt("endpoint")
        .unwrap_or_else(|| "https://storage.googleapis.com".into())
        .trim_end_matches('/')
        .to_string();
    let root = crate::key_prefix(&opt("root").unwrap_or_default());
    Ok(GcsBucket {
        endpoint,
        bucket,
        root,
        origin: None,
        #[cfg(feature = "gcs")]
        signer: signer(spec)?,
    })
}

/// The reqsign signer OpenDAL 0.59's gcs service builds from these options
/// (its `GcsBuilder::build`), or `None` when `skip_signature` is set.
#[cfg(feature = "gcs")]
fn signer(
    spec: &ConnectorSpec,
) -> Result<Option<reqsign_core::Signer<reqsign_google::Credential>>, String> {
    use reqsign_core::{Context, Env as _, OsEnv, ProvideCredentialChain, Signer, StaticEnv};
    use reqsign_google::{
        DefaultCredentialProvider, FileCredentialProvider, RequestSigner, StaticCredentialProvider,
        TokenCredentialProvider, VmMetadataCredentialProvider,
    };
    let opt = |k: &str| spec.options.get(k).filter(|v| !v.is_empty()).cloned();
    let flag = |k: &str| opt(k).is_some_and(|v| v == "true");
    if flag("skip_signature") || flag("allow_anonymous") {
        return Ok(None);
    }
    let scope = opt("scope")
        .unwrap_or_else(|| "https://www.googleapis.com/auth/devstorage.read_write".into());
    let os_env = OsEnv;
    let mut envs = os_env.vars();
    envs.insert("GOOGLE_SCOPE".to_string(), scope.clone());
    let ctx = Context::new()
        .with_file_read(reqsign_file_read_tokio::TokioFileRead)
        .with_http_send(opendal::HttpTransporter::default())
        .with_env(StaticEnv {
            home_dir: os_env.home_dir(),
            envs,
        });
    let service_account = opt("service_account");
    let mut default = DefaultCredentialProvider::builder();
    if flag("disable_config_load") {
        default = default.no_env().no_well_known();
    }
    if flag("disable_vm_metadata") || service_account.is_some() {
        default = default.no_vm_metadata();
    }
    let mut chain = ProvideCredentialChain::new().push(default.build());
    if let (false, Some(sa)) = (flag("disable_vm_metadata"), service_account.as_deref()) {
        chain = chain.push(
            VmMetadataCredentialProvider::new()
                .with_scope(&scope)
                .with_service_account(sa),
        );
    }
    if let Some(path) = opt("credential_path") {
        chain = chain.push_front(FileCredentialProvider::new(&path).with_scope(&scope));
    }
    if let Some(content) = opt("credential") {
        let provider = StaticCredentialProvider::from_base64(&content)
            .map_err(|e| format!("options.credential is not a base64 credential file: {e}"))?;
        chain = chain.push_front(provider.with_scope(&scope));
    }
    if let Some(token) = opt("token") {
        chain = chain.push_front(TokenCredentialProvider::new(&token));
    }
    Ok(Some(Signer::new(
        ctx,
        chain,
        RequestSigner::new("storage").with_scope(&scope),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_options() {
        let spec = ConnectorSpec {
            name: "g".into(),
            scheme: "gcs".into(),
            options: [
                ("bucket", "b"),
                ("root", "/a/b/"),
                ("endpoint", "http://127.0.0.1:1/"),
                ("skip_signature", "true"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let b = gcs_bucket(&spec).unwrap();
        assert_eq!(b.endpoint, "http://127.0.0.1:1");
        assert_eq!(b.root, "a/b/");
        #[cfg(feature = "gcs")]
        assert!(b.signer.is_none());
        let mut b = b;
        b.set_page_origin("https://Files.example:8443/app");
        assert_eq!(b.origin.as_deref(), Some("https://files.example:8443"));
        b.set_page_origin("");
        assert_eq!(b.origin, None);
        let mut spec = spec;
        spec.options.remove("bucket");
        assert!(gcs_bucket(&spec).unwrap_err().contains("bucket"));
    }
}
