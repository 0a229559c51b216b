//! Access grants: what a visitor has proven for one link, carried in a cookie
//! signed with the server's Ed25519 key. The key lives in the data directory
//! (`link-signing.key`, owner-only); its public half is written beside it
//! (`link-signing.pub`) so any wharf node holding it can check grants.
//!
//! A grant is bound to the link's public id and to a prefix of its current token
//! hash, so `link regenerate` invalidates every grant of the old URL. It also
//! carries a random grant id: uses are charged per grant (docs/links.md).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::Millis;

pub const KEY_FILE: &str = "link-signing.key";
pub const PUBLIC_FILE: &str = "link-signing.pub";
/// How much of the token hash a grant carries: enough to tell tokens apart.
const TOKEN_PREFIX: usize = 16;

/// What a visitor proved, for which link, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub link: String,
    pub token: String,
    pub id: String,
    pub expires_at: Millis,
    pub password: bool,
    /// The address whose code the visitor entered.
    pub email: Option<String>,
}

impl Grant {
    /// A fresh grant for a link whose stored token hash is `token_hash`.
    pub fn new(public_id: &str, token_hash: &str, expires_at: Millis) -> Grant {
        Grant {
            link: public_id.to_string(),
            token: token_prefix(token_hash),
            id: hex::encode(crate::secret::random_bytes::<16>()),
            expires_at,
            password: false,
            email: None,
        }
    }

    /// Whether this grant belongs to the link with this token hash.
    pub fn is_for(&self, public_id: &str, token_hash: &str) -> bool {
        self.link == public_id && self.token == token_prefix(token_hash)
    }

    fn encode(&self) -> String {
        format!(
            "1\n{}\n{}\n{}\n{}\n{}\n{}",
            self.link,
            self.token,
            self.id,
            self.expires_at,
            u8::from(self.password),
            self.email.as_deref().unwrap_or("")
        )
    }

    fn decode(s: &str) -> Option<Grant> {
        let f: Vec<&str> = s.split('\n').collect();
        if f.len() != 7 || f[0] != "1" {
            return None;
        }
        Some(Grant {
            link: f[1].to_string(),
            token: f[2].to_string(),
            id: f[3].to_string(),
            expires_at: f[4].parse().ok()?,
            password: f[5] == "1",
            email: (!f[6].is_empty()).then(|| f[6].to_string()),
        })
    }
}

fn token_prefix(token_hash: &str) -> String {
    token_hash.chars().take(TOKEN_PREFIX).collect()
}

/// The server's signing key, and a MAC key derived from it for e-mail codes.
pub struct GrantKeys {
    signing: SigningKey,
    verifying: VerifyingKey,
    mac_key: [u8; 32],
}

impl GrantKeys {
    pub fn from_seed(seed: [u8; 32]) -> GrantKeys {
        let signing = SigningKey::from_bytes(&seed);
        let mut h = Sha256::new();
        h.update(b"wharf e-mail code key\0");
        h.update(seed);
        GrantKeys {
            verifying: signing.verifying_key(),
            signing,
            mac_key: h.finalize().into(),
        }
    }

    /// The key `[links] signing_key` names (it must exist: every node of a
    /// cluster is given the same), else the data directory's, made on first start.
    pub fn for_config(config: &crate::config::Config) -> Result<GrantKeys> {
        match &config.links.signing_key {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::from(e)
                        .context(format!("reading the link signing key {}", path.display()))
                })?;
                Self::parse(&text, path)
            }
            None => Self::load_or_create(&config.data_dir),
        }
    }

    fn parse(text: &str, path: &Path) -> Result<GrantKeys> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        let seed = bytes.ok_or_else(|| {
            Error::invalid(format!("{} is not a 64-digit hex key", path.display()))
        })?;
        Ok(GrantKeys::from_seed(seed))
    }

    /// Loads the key from `dir`, creating it (owner-only) on first start.
    pub fn load_or_create(dir: &Path) -> Result<GrantKeys> {
        let path = dir.join(KEY_FILE);
        let keys = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written whole under a temporary name, then linked in place:
                // a process starting at the same moment (another node on this
                // data directory) reads a complete key or makes its own first,
                // and the loser of the link reads the winner's.
                let seed = crate::secret::random_bytes::<32>();
                let tmp = dir.join(format!(
                    ".{KEY_FILE}.{}",
                    hex::encode(crate::secret::random_bytes::<8>())
                ));
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| Error::from(e).context(format!("writing {}", tmp.display())))?;
                file.write_all(hex::encode(seed).as_bytes())?;
                file.sync_all()?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "generated the link signing key");
                        GrantKeys::from_seed(seed)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::parse(&std::fs::read_to_string(&path)?, &path)?
                    }
                    Err(e) => {
                        return Err(Error::from(e).context(format!("writing {}", path.display())))
                    }
                }
            }
            Err(e) => return Err(Error::from(e).context(format!("reading {}", path.display()))),
        };
        let public = dir.join(PUBLIC_FILE);
        let text = hex::encode(keys.verifying.to_bytes());
        if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&public)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| Error::from(e).context(format!("writing {}", public.display())))?;
        }
        Ok(keys)
    }

    /// The secret the link token key is derived from (`links::token`, which
    /// labels it apart from the signing and e-mail code keys).
    pub(super) fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The cookie value for a grant.
    pub fn issue(&self, grant: &Grant) -> String {
        let payload = grant.encode();
        let sig = self.signing.sign(payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(sig.to_bytes()))
    }

    /// The grant in a cookie value, if the signature holds and it has not expired.
    pub fn check(&self, value: &str, now: Millis) -> Option<Grant> {
        check_with(&self.verifying, value, now)
    }

    /// A keyed hash for short secrets (e-mail codes): a copy of the database alone
    /// does not let anyone try all million codes offline.
    pub fn mac(&self, parts: &[&str]) -> String {
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.mac_key).expect("any key length");
        for p in parts {
            m.update(p.as_bytes());
            m.update(b"\0");
        }
        hex::encode(m.finalize().into_bytes())
    }
}

/// Checks a grant with only the public key (another node's).
pub fn check_with(key: &VerifyingKey, value: &str, now: Millis) -> Option<Grant> {
    let (payload, sig) = value.split_once('.')?;
    let payload = B64.decode(payload).ok()?;
    let sig = Signature::from_slice(&B64.decode(sig).ok()?).ok()?;
    key.verify_strict(&payload, &sig).ok()?;
    let grant = Grant::decode(std::str::from_utf8(&payload).ok()?)?;
    (grant.expires_at > now).then_some(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_round_trips_and_nothing_else_passes() {
        let keys = GrantKeys::from_seed([7; 32]);
        let mut g = Grant::new("abc", "0123456789abcdef0123", 10_000);
        g.password = true;
        g.email = Some("bob@example.com".into());
        let cookie = keys.issue(&g);
        assert_eq!(keys.check(&cookie, 9_999), Some(g.clone()));
        assert!(g.is_for("abc", "0123456789abcdefffff"));
        assert!(
            !g.is_for("abc", "1123456789abcdef0123"),
            "regenerated token"
        );
        assert!(!g.is_for("abd", "0123456789abcdef0123"));
        assert_eq!(keys.check(&cookie, 10_000), None, "expired");
        // Another server's key, a changed payload, garbage: all refused.
        assert_eq!(GrantKeys::from_seed([8; 32]).check(&cookie, 0), None);
        let (p, s) = cookie.split_once('.').unwrap();
        let forged = B64.encode(
            String::from_utf8(B64.decode(p).unwrap())
                .unwrap()
                .replace("\n10000\n", "\n99999999\n"),
        );
        assert_eq!(keys.check(&format!("{forged}.{s}"), 0), None);
        assert_eq!(keys.check("x.y", 0), None);
        assert_eq!(keys.check("", 0), None);
        // The public key alone is enough to check.
        assert!(check_with(&keys.verifying, &cookie, 0).is_some());
    }

    #[test]
    fn the_key_is_created_private_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = GrantKeys::load_or_create(dir.path()).unwrap();
        let b = GrantKeys::load_or_create(dir.path()).unwrap();
        let g = Grant::new("l", "h", 5);
        assert!(b.check(&a.issue(&g), 0).is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(a.mac(&["1", "x", "123456"]), b.mac(&["1", "x", "123456"]));
        assert_ne!(a.mac(&["1", "x", "123456"]), a.mac(&["1", "x1", "23456"]));
    }
}
