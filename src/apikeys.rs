//! API keys: their format, generation and the hash that is stored.
//!
//! A key reads `wharf_<prefix>_<secret>`: the 8-character prefix names the key
//! (it is shown in lists and audit rows and finds the row), the secret is 256
//! random bits. Only the SHA-256 of the whole key is stored, so a copy of the
//! database opens nothing; a plain hash is enough because the secret is random,
//! not chosen by a person.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::random_bytes;

const PREFIX_LEN: usize = 8;
/// Lower-case letters and digits without look-alikes: prefixes are read aloud.
const PREFIX_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A new key (shown once) with its prefix and stored hash.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate() -> NewKey {
    // 256 is a multiple of the alphabet's 32 letters: every letter is equally likely.
    let prefix: String = random_bytes::<PREFIX_LEN>()
        .iter()
        .map(|b| PREFIX_ALPHABET[(*b as usize) % PREFIX_ALPHABET.len()] as char)
        .collect();
    let secret = hex::encode(random_bytes::<32>());
    let key = format!("wharf_{prefix}_{secret}");
    let hash = hash(&key);
    NewKey { key, prefix, hash }
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The prefix of a well-formed key, `None` for anything else.
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("wharf_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let prefix_ok =
        prefix.len() == PREFIX_LEN && prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b));
    let secret_ok = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (prefix_ok && secret_ok).then_some(prefix)
}

/// Whether `key` is the one whose hash is `stored` (compared in constant time).
pub fn matches(key: &str, stored: &str) -> bool {
    bool::from(hash(key).as_bytes().ct_eq(stored.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_well_formed_and_only_their_hash_matches() {
        let a = generate();
        let b = generate();
        assert_ne!(a.key, b.key);
        assert_eq!(prefix_of(&a.key), Some(a.prefix.as_str()));
        assert!(a.key.len() > 64 + 8);
        assert!(matches(&a.key, &a.hash));
        assert!(!matches(&b.key, &a.hash));
        assert!(!a.hash.contains(&a.key[15..]), "the secret is not stored");
        for bad in [
            "",
            "wharf_",
            "wharf_abcd_0000",
            &a.key[..a.key.len() - 1],
            &a.key.replace("wharf_", "warf_"),
            &format!("{}x", a.key),
            "wharf_ABCDEFGH_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(prefix_of(bad), None, "{bad:?}");
        }
    }
}
