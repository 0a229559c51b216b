//! Poly1305 (RFC 8439), in radix 2^44 so that AVX-512 IFMA (52-bit multiply-add)
//! can run eight blocks at once.
//!
//! Why our own: on this class of CPU the SSE2 Poly1305 in aws-lc (russh's
//! backend) costs about as much as ChaCha20 itself, so it is half the price of
//! the chacha20-poly1305 cipher; IFMA does the same work in about a quarter of the
//! time. Short messages, and CPUs without IFMA, take the scalar path here (the
//! cipher falls back to aws-lc as a whole where IFMA is missing).
//!
//! Limbs: h = h0 + h1·2^44 + h2·2^88 with h0, h1 < 2^44 and h2 < 2^42 after a carry
//! pass. Because 2^130 ≡ 5 (mod p), a product term of weight 2^132 folds back
//! with a factor 20 (the `s` limbs below), and one of weight 2^140 with 5·2^10.
//! The bounds that keep every sum inside 64 bits (and every IFMA operand under
//! 2^52) are written next to the code that relies on them.

const M44: u64 = (1 << 44) - 1;
const M42: u64 = (1 << 42) - 1;

/// A field element in radix 2^44, carried (limbs within a few units of 44/44/42 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fe(pub(crate) [u64; 3]);

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Splits a 128-bit little-endian number (two halves) into limbs, adding
/// `hibit`·2^128. Result: limbs < 2^44, 2^44, 2^41.
fn limbs(t0: u64, t1: u64, hibit: u64) -> Fe {
    Fe([
        t0 & M44,
        ((t0 >> 44) | (t1 << 20)) & M44,
        (t1 >> 24) | (hibit << 40),
    ])
}

/// The clamped `r` of a one-time key: limbs < 2^44, 2^44, 2^36.
pub(crate) fn clamp_r(key: &[u8; 32]) -> Fe {
    limbs(
        le64(&key[0..8]) & 0x0fff_fffc_0fff_ffff,
        le64(&key[8..16]) & 0x0fff_fffc_0fff_fffc,
        0,
    )
}

/// h·r mod p, carried. Inputs: every limb < 2^47 (h) and r as carried (< 2^44
/// plus a few units); each product term is then < 2^47·20·2^44 < 2^96, and a sum of
/// three < 2^98, inside u128.
pub(crate) fn mul(h: Fe, r: Fe) -> Fe {
    let [h0, h1, h2] = h.0.map(u128::from);
    let [r0, r1, r2] = r.0.map(u128::from);
    let (s1, s2) = (r1 * 20, r2 * 20);
    let d0 = h0 * r0 + h1 * s2 + h2 * s1;
    let d1 = h0 * r1 + h1 * r0 + h2 * s2;
    let d2 = h0 * r2 + h1 * r1 + h2 * r0;
    carry128(d0, d1, d2)
}

fn carry128(d0: u128, mut d1: u128, mut d2: u128) -> Fe {
    let m44 = u128::from(M44);
    d1 += d0 >> 44;
    let mut h0 = d0 & m44;
    d2 += d1 >> 44;
    let h1 = d1 & m44;
    let c = d2 >> 42;
    let h2 = d2 & u128::from(M42);
    // c < 2^57, so h0 + 5c stays far inside u128.
    h0 += c * 5;
    let c = h0 >> 44;
    h0 &= m44;
    // Limbs now < 2^44, 2^44 + 2^16, 2^42: narrow enough for u64 and for IFMA.
    Fe([h0 as u64, (h1 + c) as u64, h2 as u64])
}

/// Carries a u64 element whose limbs are each < 2^62 back to the carried form.
pub(crate) fn carry(h: Fe) -> Fe {
    let [d0, d1, d2] = h.0;
    carry128(d0.into(), d1.into(), d2.into())
}

fn add(a: Fe, b: Fe) -> Fe {
    Fe([a.0[0] + b.0[0], a.0[1] + b.0[1], a.0[2] + b.0[2]])
}

/// Absorbs whole 16-byte blocks one at a time: h = (h + m)·r.
pub(crate) fn blocks_scalar(mut h: Fe, r: Fe, data: &[u8]) -> Fe {
    for b in data.chunks_exact(16) {
        h = mul(add(h, limbs(le64(&b[0..8]), le64(&b[8..16]), 1)), r);
    }
    h
}

/// h mod p + s mod 2^128, as the 16-byte tag.
fn finish(h: Fe, key: &[u8; 32]) -> [u8; 16] {
    // Two passes leave h fully normalised (h < 2^130, limbs exact).
    let Fe([mut h0, mut h1, mut h2]) = carry(carry(h));
    h2 += h1 >> 44;
    h1 &= M44;
    h0 += (h2 >> 42) * 5;
    h2 &= M42;
    h1 += h0 >> 44;
    h0 &= M44;
    h2 += h1 >> 44;
    h1 &= M44;
    // g = h + 5 - 2^130; take it when it did not borrow (h >= p), in constant time.
    let mut g0 = h0 + 5;
    let mut g1 = h1 + (g0 >> 44);
    g0 &= M44;
    let mut g2 = h2 + (g1 >> 44);
    g1 &= M44;
    let take_g = 0u64.wrapping_sub(g2 >> 42); // all ones when g >= 2^130
    g2 &= M42;
    let h0 = (h0 & !take_g) | (g0 & take_g);
    let h1 = (h1 & !take_g) | (g1 & take_g);
    let h2 = (h2 & !take_g) | (g2 & take_g);
    let lo = h0 | (h1 << 44);
    let hi = (h1 >> 20) | (h2 << 24);
    let h = (u128::from(hi) << 64) | u128::from(lo);
    let s = u128::from_le_bytes(key[16..32].try_into().expect("16 bytes"));
    h.wrapping_add(s).to_le_bytes()
}

/// The last partial block: padded with 0x01 and zeros, no 2^128 bit.
fn last_block(h: Fe, r: Fe, rest: &[u8]) -> Fe {
    if rest.is_empty() {
        return h;
    }
    let mut b = [0u8; 16];
    b[..rest.len()].copy_from_slice(rest);
    b[rest.len()] = 1;
    mul(add(h, limbs(le64(&b[0..8]), le64(&b[8..16]), 0)), r)
}

/// Messages shorter than this take the scalar path even with IFMA: the powers
/// of r cost seven multiplications per key, and SSH uses a fresh key per packet.
const VECTOR_MIN: usize = 512;

/// Poly1305 of `msg` under the one-time `key`.
pub fn tag(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    tag_with(key, msg, true)
}

/// The scalar path alone, for tests that compare both paths.
#[doc(hidden)]
pub fn tag_scalar(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    tag_with(key, msg, false)
}

fn tag_with(key: &[u8; 32], msg: &[u8], vector: bool) -> [u8; 16] {
    let r = clamp_r(key);
    let mut h = Fe([0; 3]);
    let mut rest = msg;
    #[cfg(target_arch = "x86_64")]
    if vector && msg.len() >= VECTOR_MIN && crate::ifma::available() {
        let n = msg.len() / 128 * 128;
        // SAFETY: the CPU features `ifma::blocks` needs were checked just above.
        h = unsafe { crate::ifma::blocks(r, &msg[..n]) };
        rest = &msg[n..];
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = vector;
    let n = rest.len() / 16 * 16;
    h = blocks_scalar(h, r, &rest[..n]);
    finish(last_block(h, r, &rest[n..]), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc8439_section_2_5_2() {
        let key: [u8; 32] = hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
            .try_into()
            .unwrap();
        let msg = b"Cryptographic Forum Research Group";
        assert_eq!(
            tag(&key, msg).to_vec(),
            hex("a8061dc1305136c6c22b8baf0c0127a9")
        );
        assert_eq!(tag_scalar(&key, msg), tag(&key, msg));
    }

    /// RFC 8439 A.3 vectors #5 to #9: the ones that land h on or past p.
    #[test]
    fn rfc8439_reduction_vectors() {
        let k = |r: u8, s: u8| {
            let mut k = [0u8; 32];
            k[0] = r;
            k[16..].fill(s);
            k
        };
        let mut t1 = [0u8; 16];
        t1[0] = 3;
        let mut m6 = [0u8; 16];
        m6[0] = 2;
        let mut m7 = vec![0xffu8; 16];
        m7.push(0xf0);
        m7.extend([0xff; 15]);
        m7.push(0x11);
        m7.extend([0; 15]);
        let mut t7 = [0u8; 16];
        t7[0] = 5;
        let mut m8 = vec![0xffu8; 16];
        m8.push(0xfb);
        m8.extend([0xfe; 15]);
        m8.extend([0x01; 16]);
        let mut m9 = vec![0xfdu8];
        m9.extend([0xff; 15]);
        let mut t9 = [0xffu8; 16];
        t9[0] = 0xfa;
        let cases: [(&[u8; 32], &[u8], [u8; 16]); 5] = [
            (&k(2, 0), &[0xff; 16], t1),
            (&k(2, 0xff), &m6, t1),
            (&k(1, 0), &m7, t7),
            (&k(1, 0), &m8, [0; 16]),
            (&k(2, 0), &m9, t9),
        ];
        for (i, (key, msg, want)) in cases.iter().enumerate() {
            assert_eq!(tag_scalar(key, msg), *want, "vector {}", i + 5);
        }
    }
}
