//! User account rules shared by the CLI and the admin API: valid names, SSH
//! public key parsing, the JSON form of an account, and the first-start admin.

use russh::keys::{HashAlg, PublicKey};

use crate::error::{Error, ErrorKind, Result};
use crate::policy::{PermSet, ProtocolSet};
use crate::secret;
use crate::store::{format_ms, Db, NewKey, NewUser, SshKey, User};
use crate::vfs::VPath;

/// A user name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`
/// (so it can never be read as a path or a command-line flag).
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name.starts_with(['.', '-']) {
        return Err(Error::invalid(format!(
            "invalid user name {name:?}: use 1-64 letters, digits, '.', '_' or '-', \
             not starting with '.' or '-'"
        )));
    }
    Ok(())
}

/// Parses one OpenSSH public key (the contents of a `.pub` file). Accepted types are
/// those the SSH server verifies: ed25519, ECDSA and RSA.
pub fn parse_public_key(text: &str) -> Result<NewKey> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| Error::invalid("the key file is empty"))?;
    let mut key = PublicKey::from_openssh(line).map_err(|e| {
        Error::invalid(format!(
            "not an OpenSSH public key ({e}); expected a line such as \"ssh-ed25519 AAAA... comment\""
        ))
    })?;
    let algorithm = key.algorithm();
    let supported = matches!(
        algorithm,
        russh::keys::Algorithm::Ed25519
            | russh::keys::Algorithm::Ecdsa { .. }
            | russh::keys::Algorithm::Rsa { .. }
    );
    if !supported {
        return Err(Error::invalid(format!(
            "key type {} is not supported; use ed25519, ecdsa or rsa",
            algorithm.as_str()
        )));
    }
    let comment = key.comment().to_string();
    key.set_comment("");
    let openssh = key
        .to_openssh()
        .map_err(|e| Error::invalid(format!("cannot encode the key: {e}")))?;
    Ok(NewKey {
        algorithm: algorithm.as_str().to_string(),
        openssh: openssh.trim().to_string(),
        comment,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// A user as JSON (CLI and API alike): everything but the password hash.
pub fn json(u: &User, keys: &[SshKey]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"fingerprint": k.fingerprint, "algorithm": k.algorithm, "comment": k.comment}))
        .collect();
    serde_json::json!({
        "name": u.name,
        "enabled": u.enabled,
        "admin": u.admin,
        "home": u.home.as_str(),
        "perms": u.perms.to_string(),
        // May create links (the share permission, or an administrator).
        "share": crate::links::may_share(u),
        "protocols": u.protocols.to_string(),
        "has_password": u.password_hash.is_some(),
        "key_and_password": u.key_and_password,
        "email": u.email,
        "display_name": u.display_name,
        "created_at": format_ms(u.created_at),
        "keys": keys,
    })
}

/// `perms` with the `share` permission (creating links) on or off.
pub fn with_share(perms: PermSet, on: bool) -> PermSet {
    crate::policy::Perm::ALL
        .into_iter()
        .filter(|p| {
            if *p == crate::policy::Perm::Share {
                on
            } else {
                perms.has(*p)
            }
        })
        .collect()
}

/// On the very first start (no user at all), creates `admin` (an administrator)
/// with home `/`, every permission and a random password, which is returned to be
/// shown once.
pub async fn ensure_first_admin(db: &Db) -> Result<Option<String>> {
    if db.run(|s| s.user_count()).await? > 0 {
        return Ok(None);
    }
    let password = secret::generate_password();
    let hash = secret::hash_password_off_thread(password.clone()).await?;
    let user = NewUser {
        name: "admin".into(),
        password_hash: Some(hash),
        home: VPath::root(),
        perms: PermSet::all(),
        protocols: ProtocolSet::all(),
        key_and_password: false,
    };
    let created = db
        .run(move |s| {
            match s.user_insert(&user) {
                Ok(_) => {}
                // Another node starting at the same moment made it first.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            s.user_set_admin("admin", true)?;
            Ok(true)
        })
        .await?;
    Ok(created.then_some(password))
}

/// A display name as staff may set it: trimmed, at most 80 characters, no
/// control characters. An empty one clears it (`None`).
pub fn check_display_name(name: &str) -> Result<Option<String>> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > 80 {
        return Err(Error::invalid("a display name has at most 80 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a display name cannot hold control characters",
        ));
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["acme", "a.b-c_d", "A1"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65), "é"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_an_ed25519_key_and_its_fingerprint() {
        let k = parse_public_key(
            "# comment line\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@host\n",
        )
        .unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment, "alice@host");
        assert!(k.fingerprint.starts_with("SHA256:"), "{}", k.fingerprint);
        assert!(!k.openssh.contains("alice"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("ssh-ed25519 notbase64").is_err());
        assert!(parse_public_key("-----BEGIN OPENSSH PRIVATE KEY-----").is_err());
    }
}
