//! ChaCha20 keystream from aws-lc (its AVX2 assembly), in OpenSSH's layout:
//! a 64-bit block counter and the 64-bit big-endian sequence number as nonce,
//! which is the IETF layout with the counter's high word in the nonce (zero
//! here: an SSH packet is far below 2^32 blocks).

/// XORs the keystream of `key`, packet `seq`, from block `counter`, into `buf`.
pub(crate) fn xor(key: &[u8; 32], seq: u32, counter: u32, buf: &mut [u8]) {
    let mut nonce = [0u8; 12];
    nonce[8..].copy_from_slice(&seq.to_be_bytes());
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
