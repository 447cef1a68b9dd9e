//! Per-worker fast random numbers (wyrand) for load balancing, weighted routes and request ids.
//! Not cryptographic; seeded per worker from the clock and the worker index.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    // Mix in the address of a thread-local so workers started in the same nanosecond differ.
    let local = 0u8;
    nanos ^ ((&raw const local) as u64).rotate_left(32)
}

/// Next 64 random bits.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// Uniform in `0..n` (n > 0), by Lemire's multiply-shift.
pub(crate) fn below(n: u32) -> u32 {
    ((u64::from(next_u64() as u32) * u64::from(n)) >> 32) as u32
}

/// Write a random UUID v4 (36 bytes, lowercase) into `dst`.
pub(crate) fn uuid_v4(dst: &mut [u8; 36]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = (u128::from(next_u64()) << 64) | u128::from(next_u64());
    bits = (bits & !(0xf << 76)) | (0x4 << 76); // version 4
    bits = (bits & !(0x3 << 62)) | (0x2 << 62); // variant 10
    let mut nibble = 32;
    for (i, out) in dst.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *out = b'-';
        } else {
            nibble -= 1;
            *out = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            let v = below(7) as usize;
            assert!(v < 7);
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let mut a = [0u8; 36];
        let mut b = [0u8; 36];
        uuid_v4(&mut a);
        uuid_v4(&mut b);
        assert_ne!(a, b);
        assert_eq!(a[14], b'4');
        assert!(matches!(a[19], b'8' | b'9' | b'a' | b'b'));
        assert_eq!([a[8], a[13], a[18], a[23]], [b'-'; 4]);
    }
}
