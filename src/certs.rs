//! TLS certificates that can be replaced while serving (FTPS and the HTTPS link
//! server). A [`ReloadableCert`] is a rustls certificate resolver holding the
//! current chain and key behind an `Arc`: a reload reads the PEM files again and,
//! only if they load and the key matches the certificate, swaps the `Arc`. New
//! handshakes get the new certificate; open sessions keep theirs; a bad file keeps
//! the old pair and says why.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The crypto provider wharf's TLS servers use (aws-lc-rs, as russh does).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate chain and key from two PEM files, replaceable at run time.
pub struct ReloadableCert {
    /// What it serves, for messages ("FTPS", "HTTPS").
    what: &'static str,
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("what", &self.what)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub fn load(what: &'static str, cert: &Path, key: &Path) -> Result<Arc<ReloadableCert>> {
        let loaded = load_pair(what, cert, key)?;
        Ok(Arc::new(ReloadableCert {
            what,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// Reads the files again. `Ok(Some(fingerprint))` when the certificate changed
    /// (now served), `Ok(None)` when it is the same; on error the old pair stays.
    pub fn reload(&self) -> Result<Option<String>> {
        let fresh = load_pair(self.what, &self.cert, &self.key)?;
        let mut current = self.current.write().expect("certificate lock");
        if current.cert == fresh.cert {
            return Ok(None);
        }
        *current = Arc::new(fresh);
        Ok(Some(fingerprint(&current.cert[0])))
    }

    /// SHA-256 of the leaf certificate now served, as hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current.read().expect("certificate lock").cert[0])
    }

    pub fn what(&self) -> &'static str {
        self.what
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

fn load_pair(what: &str, cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let bad = |which: &str, path: &Path, e: String| {
        Error::invalid(format!("{what} {which} {}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(
            "certificate",
            cert,
            "no certificate in the file".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, e.to_string()))?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| bad("certificate and key", cert, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let g = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, g.cert.pem()).unwrap();
        std::fs::write(&k, g.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn reload_swaps_only_a_good_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = write_pair(dir.path(), "one.test");
        let store = ReloadableCert::load("test", &c, &k).unwrap();
        let first = store.fingerprint();
        assert_eq!(store.reload().unwrap(), None, "unchanged files");

        let key_before = std::fs::read(&k).unwrap();
        write_pair(dir.path(), "two.test");
        let second = store.reload().unwrap().expect("changed");
        assert_ne!(first, second);
        assert_eq!(store.fingerprint(), second);

        // A certificate that does not match its key is refused; the old one stays.
        std::fs::write(&k, key_before).unwrap();
        assert!(store.reload().is_err());
        std::fs::write(&c, "garbage").unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains("c.pem"), "{err}");
        assert_eq!(store.fingerprint(), second);
    }
}
