//! Eight Poly1305 blocks per step with AVX-512 IFMA (`vpmadd52luq`/`vpmadd52huq`).
//!
//! Lane j carries H_j = Σ_t m_{8t+j}·r^{8(q-1-t)} (Horner with r^8), and the
//! lanes are folded at the end as Σ_j H_j·r^{8-j}, which is exactly the serial
//! Σ_i m_i·r^{n-i}. IFMA multiplies the low 52 bits of each operand and returns
//! the low or high 52 bits of the 104-bit product, so every operand must stay
//! under 2^52; the bounds are given where they matter.

use crate::poly1305::{carry, mul, Fe};
use std::arch::x86_64::*;

const M44: i64 = (1 << 44) - 1;
const M42: i64 = (1 << 42) - 1;

/// Whether this CPU runs [`blocks`] (checked once, then cached by std).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512ifma")
}

/// Three limbs of eight lanes.
#[derive(Clone, Copy)]
struct V([__m512i; 3]);

/// a·b mod p lane by lane, carried. Needs: a limbs < 2^52; b carried (limbs
/// < 2^44 + 2^16, top < 2^42) so that 20·b < 2^49.
#[target_feature(enable = "avx512f,avx512ifma")]
fn vmul(a: V, b: V) -> V {
    let [a0, a1, a2] = a.0;
    let [b0, b1, b2] = b.0;
    let times20 = |x| _mm512_add_epi64(_mm512_slli_epi64::<4>(x), _mm512_slli_epi64::<2>(x));
    let (s1, s2) = (times20(b1), times20(b2));
    let z = _mm512_setzero_si512();
    // Each sum of three as independent multiply-adds then two adds: IFMA's
    // latency is four cycles, and one dependent chain per limb would wait on it
    // three times per step of the Horner loop.
    let lo = |p: __m512i, q: __m512i| _mm512_madd52lo_epu64(z, p, q);
    let hi = |p: __m512i, q: __m512i| _mm512_madd52hi_epu64(z, p, q);
    let sum3 = |x: __m512i, y: __m512i, w: __m512i| _mm512_add_epi64(_mm512_add_epi64(x, y), w);
    // lo sums: three terms < 2^52 each; hi sums: three terms < 2^(94-52) each.
    let l0 = sum3(lo(a0, b0), lo(a1, s2), lo(a2, s1));
    let h0 = sum3(hi(a0, b0), hi(a1, s2), hi(a2, s1));
    let l1 = sum3(lo(a0, b1), lo(a1, b0), lo(a2, s2));
    let h1 = sum3(hi(a0, b1), hi(a1, b0), hi(a2, s2));
    let l2 = sum3(lo(a0, b2), lo(a1, b1), lo(a2, b0));
    let h2 = sum3(hi(a0, b2), hi(a1, b1), hi(a2, b0));
    // The high halves weigh 2^52 more than their low halves: 2^8 into the next
    // limb, and for the top limb 2^140 ≡ 5·2^10 into limb 0.
    // d0 < 3·2^52 + 5·2^10·3·2^42 < 2^57; d1, d2 < 3·2^52 + 3·2^50 < 2^55.
    let d0 = _mm512_add_epi64(
        l0,
        _mm512_add_epi64(_mm512_slli_epi64::<12>(h2), _mm512_slli_epi64::<10>(h2)),
    );
    let d1 = _mm512_add_epi64(l1, _mm512_slli_epi64::<8>(h0));
    let d2 = _mm512_add_epi64(l2, _mm512_slli_epi64::<8>(h1));
    vcarry(d0, d1, d2)
}

/// Carries limbs each < 2^62 to < 2^44, 2^44 + 1, 2^42.
#[target_feature(enable = "avx512f")]
fn vcarry(d0: __m512i, d1: __m512i, d2: __m512i) -> V {
    let m44 = _mm512_set1_epi64(M44);
    let m42 = _mm512_set1_epi64(M42);
    let d1 = _mm512_add_epi64(d1, _mm512_srli_epi64::<44>(d0));
    let d0 = _mm512_and_si512(d0, m44);
    let d2 = _mm512_add_epi64(d2, _mm512_srli_epi64::<44>(d1));
    let d1 = _mm512_and_si512(d1, m44);
    let c = _mm512_srli_epi64::<42>(d2);
    let d2 = _mm512_and_si512(d2, m42);
    // c < 2^20 here, so 5c < 2^23.
    let d0 = _mm512_add_epi64(d0, _mm512_add_epi64(_mm512_slli_epi64::<2>(c), c));
    let d1 = _mm512_add_epi64(d1, _mm512_srli_epi64::<44>(d0));
    let d0 = _mm512_and_si512(d0, m44);
    V([d0, d1, d2])
}

#[target_feature(enable = "avx512f")]
fn splat(f: Fe) -> V {
    V(f.0.map(|x| _mm512_set1_epi64(x as i64)))
}

/// Eight 16-byte blocks as limbs, lane j = block j, each with the 2^128 bit.
/// Limbs < 2^44, 2^44, 2^41.
#[target_feature(enable = "avx512f")]
fn load(chunk: &[u8; 128]) -> V {
    // SAFETY: 128 readable bytes; unaligned loads.
    let (a, b) = unsafe {
        (
            _mm512_loadu_si512(chunk.as_ptr().cast()),
            _mm512_loadu_si512(chunk.as_ptr().add(64).cast()),
        )
    };
    let lo = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
    let hi = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
    let m44 = _mm512_set1_epi64(M44);
    let m0 = _mm512_and_si512(lo, m44);
    let m1 = _mm512_and_si512(
        _mm512_or_si512(_mm512_srli_epi64::<44>(lo), _mm512_slli_epi64::<20>(hi)),
        m44,
    );
    let m2 = _mm512_or_si512(_mm512_srli_epi64::<24>(hi), _mm512_set1_epi64(1 << 40));
    V([m0, m1, m2])
}

#[target_feature(enable = "avx512f")]
fn vadd(a: V, b: V) -> V {
    V([
        _mm512_add_epi64(a.0[0], b.0[0]),
        _mm512_add_epi64(a.0[1], b.0[1]),
        _mm512_add_epi64(a.0[2], b.0[2]),
    ])
}

/// Absorbs `data` (a multiple of 128 bytes, at least 128) from h = 0 and
/// returns the carried h, as the serial loop would.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 IFMA ([`available`]).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) unsafe fn blocks(r: Fe, data: &[u8]) -> Fe {
    debug_assert!(data.len() >= 128 && data.len().is_multiple_of(128));
    // r^1 .. r^8, carried (scalar `mul` returns carried limbs).
    let mut pow = [r; 8];
    for i in 1..8 {
        pow[i] = mul(pow[i - 1], r);
    }
    let r8 = splat(pow[7]);
    let mut chunks = data
        .chunks_exact(128)
        .map(|c| c.try_into().expect("128 bytes"));
    let mut h = load(chunks.next().expect("at least one chunk"));
    for c in chunks {
        // h limbs < 2^44 + 1 (carried) plus message limbs < 2^44: under 2^52.
        h = vadd(vmul(h, r8), load(c));
    }
    // Lane j times r^(8-j).
    let lane_pow = |k: usize| {
        _mm512_setr_epi64(
            pow[7].0[k] as i64,
            pow[6].0[k] as i64,
            pow[5].0[k] as i64,
            pow[4].0[k] as i64,
            pow[3].0[k] as i64,
            pow[2].0[k] as i64,
            pow[1].0[k] as i64,
            pow[0].0[k] as i64,
        )
    };
    let h = vmul(h, V([lane_pow(0), lane_pow(1), lane_pow(2)]));
    // Sum of eight carried lanes: limbs < 2^48, which `carry` takes.
    let sum = |v: __m512i| _mm512_reduce_add_epi64(v) as u64;
    carry(Fe([sum(h.0[0]), sum(h.0[1]), sum(h.0[2])]))
}
