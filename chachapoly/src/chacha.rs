//! ChaCha20 keystream in OpenSSH's layout: a 64-bit block counter and the
//! 64-bit big-endian sequence number as nonce, which is the IETF layout with the
//! counter's high word in the nonce (zero here: an SSH packet is far below 2^32
//! blocks). Whole kilobytes go through our AVX-512 code where the CPU has it,
//! the rest through aws-lc (its AVX2 assembly).

/// XORs the keystream of `key`, packet `seq`, from block `counter`, into `buf`.
pub(crate) fn xor(key: &[u8; 32], seq: u32, counter: u32, buf: &mut [u8]) {
    let mut nonce = [0u8; 12];
    nonce[8..].copy_from_slice(&seq.to_be_bytes());
    xor_nonce(key, &nonce, counter, buf);
}

fn xor_nonce(key: &[u8; 32], nonce: &[u8; 12], counter: u32, buf: &mut [u8]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= 1024 && avx512() {
        // SAFETY: AVX-512F was checked just above.
        done = unsafe { crate::chacha_avx512::xor_chunks(key, nonce, counter, buf) };
    }
    let rest = &mut buf[done..];
    if rest.is_empty() {
        return;
    }
    aws_lc(key, nonce, counter + (done / 64) as u32, rest);
}

/// aws-lc's ChaCha20 over all of `buf`.
fn aws_lc(key: &[u8; 32], nonce: &[u8; 12], counter: u32, buf: &mut [u8]) {
    // SAFETY: `buf` is valid for reads and writes of its length, in and out are
    // the same pointer (which aws-lc allows), key is 32 bytes and nonce 12.
    unsafe {
        aws_lc_sys::CRYPTO_chacha_20(
            buf.as_mut_ptr(),
            buf.as_ptr(),
            buf.len(),
            key.as_ptr(),
            nonce.as_ptr(),
            counter,
        );
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_aws_lc_at_every_length_and_counter() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        let key: [u8; 32] = std::array::from_fn(|_| next());
        let nonce: [u8; 12] = std::array::from_fn(|_| next());
        let data: Vec<u8> = (0..5000).map(|_| next()).collect();
        for counter in [0u32, 1, 7, 4000] {
            for len in (0..5000).step_by(37).chain([1024, 2048, 3072, 4096, 4999]) {
                let mut ours = data[..len].to_vec();
                xor_nonce(&key, &nonce, counter, &mut ours);
                let mut theirs = data[..len].to_vec();
                aws_lc(&key, &nonce, counter, &mut theirs);
                assert!(ours == theirs, "counter {counter} length {len}");
            }
        }
    }
}
