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
    let mut bits = (u128::from(next_u64()) << 64) | u128::from(next_u64());
    bits = (bits & !(0xf << 76)) | (0x4 << 76); // version 4
    bits = (bits & !(0x3 << 62)) | (0x2 << 62); // variant 10
    write_uuid(bits, dst);
}

/// `bits` as a UUID's text, 8-4-4-4-12 lowercase hex digits, most significant first. Once per
/// request (`x-request-id`): eight bytes of digits at a time, not a digit per loop turn.
fn write_uuid(bits: u128, dst: &mut [u8; 36]) {
    let mut hex = [0u8; 32];
    for (i, out) in hex.chunks_exact_mut(8).enumerate() {
        out.copy_from_slice(&hex8((bits >> (96 - 32 * i)) as u32));
    }
    dst[..8].copy_from_slice(&hex[..8]);
    dst[9..13].copy_from_slice(&hex[8..12]);
    dst[14..18].copy_from_slice(&hex[12..16]);
    dst[19..23].copy_from_slice(&hex[16..20]);
    dst[24..].copy_from_slice(&hex[20..]);
    for i in [8, 13, 18, 23] {
        dst[i] = b'-';
    }
}

/// The eight lowercase hex digits of `x`, most significant first.
fn hex8(x: u32) -> [u8; 8] {
    // One nibble per byte, the most significant in the highest byte.
    let mut x = u64::from(x);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // 0x01 in each byte whose nibble is 10 or more (no byte carries into the next).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
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

    /// The text a digit at a time, as `write_uuid` wrote it before it went eight at a time.
    fn uuid_text_by_digit(bits: u128) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut dst = [0u8; 36];
        let mut nibble = 32;
        for (i, out) in dst.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *out = b'-';
            } else {
                nibble -= 1;
                *out = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
            }
        }
        dst
    }

    #[test]
    fn uuid_text_matches_digit_by_digit() {
        let mut cases = vec![
            0,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            0xa0a0_a0a0_9f9f_9f9f_0a0a_0a0a_f9f9_f9f9,
        ];
        cases.extend((0..10_000).map(|_| (u128::from(next_u64()) << 64) | u128::from(next_u64())));
        for bits in cases {
            let mut got = [0u8; 36];
            write_uuid(bits, &mut got);
            assert_eq!(got, uuid_text_by_digit(bits), "{bits:032x}");
        }
        let mut id = [0u8; 36];
        write_uuid(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, &mut id);
        assert_eq!(&id, b"01234567-89ab-cdef-fedc-ba9876543210");
    }
}
