//! The SSH host key: an Ed25519 key generated into the data directory on first
//! start (owner-only), or an existing OpenSSH private key named in the config.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use russh::keys::{Algorithm, HashAlg, PrivateKey};

use crate::error::{Error, Result};

pub const DEFAULT_FILE: &str = "ssh_host_ed25519_key";

/// Loads the key at `path`, or creates it there if `generate` and it is missing.
pub fn load_or_generate(path: &Path, generate: bool) -> Result<PrivateKey> {
    if path.exists() || !generate {
        return russh::keys::load_secret_key(path, None)
            .map_err(|e| Error::invalid(format!("SSH host key {}: {e}", path.display())));
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Error::internal("generating the SSH host key").with_source(e))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| Error::internal("encoding the SSH host key").with_source(e))?;
    // create_new: never overwrite a key another process just wrote.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new SSH host key");
    Ok(key)
}

/// `SHA256:...`, as `ssh-keygen -l` and SSH clients show it.
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let a = load_or_generate(&path, true).unwrap();
        let b = load_or_generate(&path, true).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(load_or_generate(&dir.path().join("missing"), false).is_err());
    }
}
