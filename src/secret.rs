//! Passwords and random values: argon2id hashing, verification in constant time,
//! and generated secrets. Nothing here logs or returns a secret it was given.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::Rng;

use crate::error::{Error, Result};

/// Random bytes from the thread-local CSPRNG (ChaCha, seeded by the OS).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// A 24-character password from an alphabet without look-alikes (~137 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let b = (rng.next_u32() & 0x3f) as usize;
                if b < ALPHABET.len() {
                    return ALPHABET[b] as char;
                }
            }
        })
        .collect()
}

/// Hashes a password with argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::invalid("the password is empty"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("hashing the password failed").with_source(e.to_string()))
}

/// [`hash_password`] on a blocking thread: argon2 takes tens of milliseconds of
/// CPU and must not stall the async workers that serve every other session.
pub async fn hash_password_off_thread(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::internal("the hashing task failed").with_source(e))?
}

/// Checks a password against a stored PHC string. The comparison inside argon2 is
/// constant-time; a malformed hash simply fails.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as a real verification, for unknown users and users without
/// a password, so a login's timing does not reveal which names exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash_password("wharf-dummy-password").expect("hashing a constant cannot fail")
    });
    let _ = verify_password(password, &DUMMY);
}

/// Compares secrets without revealing where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("").is_err());
    }

    #[test]
    fn generated_passwords_differ_and_use_the_alphabet() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
    }
}
