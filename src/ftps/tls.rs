//! TLS for FTPS: the certificate (configured PEM files, or a self-signed one
//! generated into the data directory on first start) and the rustls server
//! configuration shared by control and data connections.
//!
//! TLS 1.2 and 1.3 only. The pair is re-read on SIGHUP (`crate::certs`). Sessions are cached so clients that resume the control
//! connection's TLS session on data connections (FileZilla, lftp) can, while those
//! that do not (Python's ftplib) still connect: resumption is accepted, never required.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;

use crate::certs::ReloadableCert;
use crate::error::{Error, Result};

pub const CERT_FILE: &str = "ftps_cert.pem";
pub const KEY_FILE: &str = "ftps_key.pem";

/// Loads `cert` and `key` (PEM), generating a self-signed pair there if both are
/// missing and `generate` is set. The certificate is served through a
/// [`ReloadableCert`], returned too, so SIGHUP can replace it for new sessions.
pub fn server_config(
    cert: &Path,
    key: &Path,
    generate: bool,
) -> Result<(Arc<ServerConfig>, Arc<ReloadableCert>)> {
    if generate && !cert.exists() && !key.exists() {
        self_signed(cert, key)?;
    }
    let certs = ReloadableCert::load("FTPS", cert, key)?;
    let mut config = ServerConfig::builder_with_provider(crate::certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::internal("TLS versions").with_source(e))?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    config.session_storage = ServerSessionMemoryCache::new(4096);
    Ok((Arc::new(config), certs))
}

fn self_signed(cert: &Path, key: &Path) -> Result<()> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::internal("generating the FTPS certificate").with_source(e))?;
    write_new(key, generated.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, generated.cert.pem().as_bytes(), 0o600)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed FTPS certificate");
    Ok(())
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join(CERT_FILE), dir.path().join(KEY_FILE));
        server_config(&c, &k, true).unwrap();
        let first = std::fs::read(&c).unwrap();
        server_config(&c, &k, true).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), first, "not regenerated");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&c, "garbage").unwrap();
        assert!(server_config(&c, &k, false).is_err());
    }
}
