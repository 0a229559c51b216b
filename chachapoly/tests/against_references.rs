//! The fast paths against independent implementations: Poly1305 against
//! RustCrypto's `poly1305`, the whole cipher against aws-lc's
//! `chacha20_poly1305_openssh` (what russh used before), on seeded random
//! inputs, every length up to a few kilobytes, and the extreme limb values.

use aws_lc_rs::aead::chacha20_poly1305_openssh as reference;
use poly1305::universal_hash::KeyInit;
use wharf_chachapoly::{poly1305::tag, poly1305::tag_scalar, BadTag, Key};

/// xorshift64*: reproducible inputs without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

fn rustcrypto(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    poly1305::Poly1305::new(key.into())
        .compute_unpadded(msg)
        .into()
}

#[test]
fn poly1305_every_length_to_3000_random_keys() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut msg = vec![0u8; 3000];
    rng.fill(&mut msg);
    for len in 0..=3000 {
        let key: [u8; 32] = rng.bytes();
        let want = rustcrypto(&key, &msg[..len]);
        assert_eq!(tag(&key, &msg[..len]), want, "length {len}");
        assert_eq!(tag_scalar(&key, &msg[..len]), want, "scalar, length {len}");
    }
}

#[test]
fn poly1305_long_messages_as_ssh_sends_them() {
    let mut rng = Rng(7);
    for len in [32_768 + 4 + 12, 35_000, 65_536, 262_144, 1 << 20] {
        let mut msg = vec![0u8; len];
        rng.fill(&mut msg);
        for _ in 0..4 {
            let key: [u8; 32] = rng.bytes();
            assert_eq!(tag(&key, &msg), rustcrypto(&key, &msg), "length {len}");
        }
    }
}

/// All-ones message blocks with the largest clamped r and all-ones s put every
/// limb at its bound; all-zero r and messages that sum to p and just past it
/// test the final reduction.
#[test]
fn poly1305_extreme_values() {
    let mut keys = vec![[0xffu8; 32], [0u8; 32]];
    let mut k = [0u8; 32];
    k[..16].fill(0xff);
    keys.push(k);
    let mut k = [0u8; 32];
    k[16..].fill(0xff);
    k[0] = 1;
    keys.push(k);
    let mut msgs: Vec<Vec<u8>> = vec![];
    for len in [16, 128, 512, 1024, 4096, 4096 + 15, 32_768, 100_000] {
        msgs.push(vec![0xff; len]);
        msgs.push(vec![0; len]);
        let mut m = vec![0xff; len];
        for (i, b) in m.iter_mut().enumerate() {
            if i % 16 == 0 {
                *b = 0xfb;
            }
        }
        msgs.push(m);
    }
    for key in &keys {
        for msg in &msgs {
            let want = rustcrypto(key, msg);
            assert_eq!(
                tag(key, msg),
                want,
                "len {} key {:x?}",
                msg.len(),
                &key[..2]
            );
            assert_eq!(tag_scalar(key, msg), want);
        }
    }
}

#[test]
fn poly1305_many_random_keys_on_long_messages() {
    // The vector path's bounds are per step; many keys make a carry slip show.
    let mut rng = Rng(42);
    let mut msg = vec![0u8; 4096];
    for i in 0..3000 {
        rng.fill(&mut msg);
        let key: [u8; 32] = rng.bytes();
        let len = 512 + (rng.next() as usize % 3584);
        assert_eq!(
            tag(&key, &msg[..len]),
            rustcrypto(&key, &msg[..len]),
            "case {i}"
        );
    }
}

#[test]
fn seal_matches_aws_lc_and_opens_with_it() {
    let mut rng = Rng(1234);
    for i in 0..400 {
        let key_bytes: [u8; 64] = rng.bytes();
        let seq = rng.next() as u32;
        // Lengths as SSH frames them: 4-byte length, then a multiple of 8.
        let len = 4 + 8 * (2 + rng.next() as usize % (if i % 2 == 0 { 8 } else { 4200 }));
        let mut plain = vec![0u8; len];
        rng.fill(&mut plain);

        let mut ours = plain.clone();
        let our_tag = Key::new(&key_bytes).seal(seq, &mut ours);
        let mut theirs = plain.clone();
        let mut their_tag = [0u8; 16];
        reference::SealingKey::new(&key_bytes).seal_in_place(seq, &mut theirs, &mut their_tag);
        assert_eq!(ours, theirs, "ciphertext, case {i}, len {len}");
        assert_eq!(our_tag, their_tag, "tag, case {i}, len {len}");

        let enc_len: [u8; 4] = ours[..4].try_into().unwrap();
        assert_eq!(
            Key::new(&key_bytes).decrypt_length(seq, enc_len),
            reference::OpeningKey::new(&key_bytes).decrypt_packet_length(seq, enc_len)
        );
        let mut buf = ours.clone();
        let body = Key::new(&key_bytes).open(seq, &mut buf, &our_tag).unwrap();
        assert_eq!(body, &plain[4..]);
        let mut buf = ours.clone();
        let body = reference::OpeningKey::new(&key_bytes)
            .open_in_place(seq, &mut buf, &our_tag)
            .unwrap();
        assert_eq!(body, &plain[4..]);
    }
}

#[test]
fn open_refuses_any_altered_byte_and_leaves_it_encrypted() {
    let mut rng = Rng(99);
    let key_bytes: [u8; 64] = rng.bytes();
    let key = Key::new(&key_bytes);
    let mut packet = vec![0u8; 4 + 1024];
    rng.fill(&mut packet);
    let tag = key.seal(5, &mut packet);
    for pos in [0, 3, 4, 500, packet.len() - 1] {
        let mut bad = packet.clone();
        bad[pos] ^= 1;
        let before = bad.clone();
        assert_eq!(key.open(5, &mut bad, &tag), Err(BadTag), "byte {pos}");
        assert_eq!(bad, before, "nothing decrypted on a bad tag");
    }
    let mut bad_tag = tag;
    bad_tag[15] ^= 0x80;
    assert_eq!(key.open(5, &mut packet.clone(), &bad_tag), Err(BadTag));
    // Another sequence number is another key stream and another tag.
    assert_eq!(key.open(6, &mut packet.clone(), &tag), Err(BadTag));
    assert!(key.open(5, &mut packet.clone(), &tag).is_ok());
    assert_eq!(key.open(5, &mut [0u8; 3], &tag), Err(BadTag));
}
