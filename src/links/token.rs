//! Link tokens and ids. A token is 256 random bits, shown once (in the URL) and
//! stored only as its SHA-256; a public id is short and not secret, for staff.

use sha2::{Digest, Sha256};

use crate::secret::random_bytes;

/// A new token (64 hex characters) and the hash to store.
pub fn new_token() -> (String, String) {
    let token = hex::encode(random_bytes::<32>());
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token. Lookups are by this hash, so comparing it leaks
/// nothing about the token itself.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Ten characters of `a-z2-9` (about 50 bits): unique enough for staff to name a
/// link, useless for opening it.
pub fn new_public_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    random_bytes::<10>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(hash(&t1), h1);
        assert_ne!(h1, t1);
        let id = new_public_id();
        assert_eq!(id.len(), 10);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
