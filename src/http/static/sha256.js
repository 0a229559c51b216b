// SHA-256 fed piece by piece (FIPS 180-4), for direct uploads: the upload page
// hashes each part of a file as it reads it, so the whole file is never held
// in memory (WebCrypto's digest takes the whole input at once).
// Use: const h = new WharfSha256(); h.update(bytes) ...; h.hex().
(() => {
  "use strict";
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  class WharfSha256 {
    constructor() {
      this.h = new Uint32Array([
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
      ]);
      this.w = new Uint32Array(64);
      this.buf = new Uint8Array(64);
      this.fill = 0;
      this.length = 0; // bytes so far (exact up to 2^53)
      this.done = false;
    }

    // Adds bytes (a Uint8Array or an ArrayBuffer); returns this.
    update(data) {
      if (this.done) throw new Error("sha256: already finished");
      const d = data instanceof Uint8Array ? data : new Uint8Array(data);
      this.length += d.length;
      let i = 0;
      if (this.fill > 0) {
        const n = Math.min(64 - this.fill, d.length);
        this.buf.set(d.subarray(0, n), this.fill);
        this.fill += n;
        i = n;
        if (this.fill < 64) return this;
        this.block(this.buf, 0);
        this.fill = 0;
      }
      for (; i + 64 <= d.length; i += 64) this.block(d, i);
      if (i < d.length) {
        this.buf.set(d.subarray(i), 0);
        this.fill = d.length - i;
      }
      return this;
    }

    block(b, o) {
      const w = this.w;
      for (let t = 0; t < 16; t++, o += 4) {
        w[t] = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
      }
      for (let t = 16; t < 64; t++) {
        const x = w[t - 15];
        const y = w[t - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      const H = this.h;
      let a = H[0], bb = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (let t = 0; t < 64; t++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (h + S1 + ch + K[t] + w[t]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & bb) ^ (a & c) ^ (bb & c);
        const t2 = (S0 + maj) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0;
        d = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      H[0] += a; H[1] += bb; H[2] += c; H[3] += d;
      H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }

    // Finishes and returns the digest as 64 lowercase hex digits.
    hex() {
      if (!this.done) {
        const bits = this.length;
        const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
        pad[0] = 0x80;
        // The length in bits, big-endian, in the last 8 bytes.
        const hi = Math.floor(bits / 0x20000000);
        const lo = (bits % 0x20000000) * 8;
        const n = pad.length;
        pad[n - 8] = hi >>> 24; pad[n - 7] = hi >>> 16; pad[n - 6] = hi >>> 8; pad[n - 5] = hi;
        pad[n - 4] = lo >>> 24; pad[n - 3] = lo >>> 16; pad[n - 2] = lo >>> 8; pad[n - 1] = lo;
        this.update(pad);
        this.length = bits;
        this.done = true;
      }
      let out = "";
      for (const v of this.h) out += v.toString(16).padStart(8, "0");
      return out;
    }
  }

  window.WharfSha256 = WharfSha256;
})();
