//! Link tokens and ids. A link's token is derived, not stored: HMAC-SHA256 of
//! its public id and generation under the *token key*, itself derived (with a
//! label) from the link signing key in the data directory (`link-signing.key`,
//! owner-only). The database keeps only the token's SHA-256 and the generation,
//! so staff can be shown the URL again at any time while a copy of the database
//! alone (without the data directory's key) opens nothing. Regenerating bumps
//! the generation: the old URL stops working. Links made before this scheme have
//! random tokens (no generation) and cannot be shown again.
//!
//! A public id is short and not secret, for staff. Staff session tokens are
//! random ([`new_token`]).

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::secret::random_bytes;

/// The generation of a new link's token.
pub const FIRST_GENERATION: u32 = 1;

/// The key link tokens are derived with (never stored in the database).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The token key of the link signing key's seed.
    pub fn from_seed(seed: &[u8; 32]) -> TokenKey {
        let mut h = Sha256::new();
        h.update(b"wharf link token key\0");
        h.update(seed);
        TokenKey(h.finalize().into())
    }

    /// The token key of the data directory `dir` (its signing key is created,
    /// owner-only, on first use).
    /// The token key of `[links] signing_key`, else of the data directory.
    pub fn for_config(config: &crate::config::Config) -> Result<TokenKey> {
        let keys = super::grant::GrantKeys::for_config(config)?;
        Ok(TokenKey::from_seed(&keys.seed()))
    }

    pub fn load_or_create(dir: &Path) -> Result<TokenKey> {
        let keys = super::grant::GrantKeys::load_or_create(dir)?;
        Ok(TokenKey::from_seed(&keys.seed()))
    }

    /// The token of link `public_id` at `generation` (64 hex characters).
    pub fn token(&self, public_id: &str, generation: u32) -> String {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("any key length");
        m.update(public_id.as_bytes());
        m.update(b"\0");
        m.update(&generation.to_be_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// The token of a stored link if it can be shown: derived (it has a
    /// generation) with this key. `None` for a link made before tokens were
    /// derived, or a database moved to another data directory.
    pub fn shown(
        &self,
        public_id: &str,
        generation: Option<u32>,
        token_hash: &str,
    ) -> Option<String> {
        let token = self.token(public_id, generation?);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(hash(&token).as_bytes(), token_hash.as_bytes()).into();
        matches.then_some(token)
    }
}

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
    fn derived_tokens_depend_on_key_id_and_generation() {
        let k = TokenKey::from_seed(&[1; 32]);
        let t = k.token("abc", 1);
        assert_eq!(t.len(), 64);
        assert_eq!(t, k.token("abc", 1));
        assert_ne!(t, k.token("abc", 2));
        assert_ne!(t, k.token("abd", 1));
        let other = TokenKey::from_seed(&[2; 32]);
        assert_ne!(t, other.token("abc", 1));
        assert_eq!(k.shown("abc", Some(1), &hash(&t)), Some(t.clone()));
        assert_eq!(other.shown("abc", Some(1), &hash(&t)), None, "another key");
        assert_eq!(k.shown("abc", None, &hash(&t)), None, "an old random token");
        assert_eq!(k.shown("abc", Some(2), &hash(&t)), None);
    }

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
