//! Shared by the split-agreement targets: deterministic piece sizes from one seed byte, so a
//! crash reproduces from its input file alone. Owns nothing else.

/// Piece sizes (each >= 1) that feed `len` bytes in order: mostly 1..=16 bytes, sometimes up to
/// 256, drawn from an xorshift generator seeded by `seed`.
pub fn pieces(seed: u8, len: usize) -> Vec<usize> {
    let mut x = u32::from(seed).wrapping_mul(0x9e37_79b9) | 1;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = if x & 0x700 == 0 {
            1 + (x >> 16) as usize % 256
        } else {
            1 + (x >> 16) as usize % 16
        };
        let n = n.min(left);
        out.push(n);
        left -= n;
    }
    out
}
