//! CRC32C (Castagnoli, reflected polynomial `0x82F63B78`), table driven, for the v2
//! `PP2_TYPE_CRC32C` TLV (spec 2.2.3, which names RFC 4960 appendix B as the algorithm).

/// One table entry per byte value, built at compile time.
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation; i < 256 by the loop bound"
)]
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// A running CRC32C.
#[derive(Clone, Copy, Debug)]
pub(super) struct Crc32c(u32);

impl Crc32c {
    pub(super) fn new() -> Self {
        Self(!0)
    }

    pub(super) fn update(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            let idx = usize::from((self.0 as u8) ^ b);
            self.0 = (self.0 >> 8) ^ TABLE.get(idx).copied().unwrap_or_default();
        }
        self
    }

    pub(super) fn finish(self) -> u32 {
        !self.0
    }
}

/// The CRC32C of `bytes`.
#[cfg(test)]
pub(super) fn checksum(bytes: &[u8]) -> u32 {
    Crc32c::new().update(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The standard check value for CRC-32C (Castagnoli): crc("123456789").
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros and 32 bytes of 0xff.
        assert_eq!(checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(checksum(&[0xffu8; 32]), 0x62A8_AB43);
        // Incremental equals one-shot.
        assert_eq!(
            Crc32c::new().update(b"1234").update(b"56789").finish(),
            0xE306_9283
        );
    }
}
