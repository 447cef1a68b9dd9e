//! A map keyed by stream id. Stream ids are chosen by the peer, but a map holds at most the
//! concurrent-stream limit of them and each id is used once, so a keyed hash (SipHash) buys
//! nothing here: one multiply spreads the ids over the table's bits.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a `u32` stream id with one multiplication (Fibonacci hashing).
#[derive(Default, Clone, Copy)]
pub struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is used for stream ids; fold anything else in byte by byte.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A `HashMap` keyed by stream id (`u32`), hashed with [`StreamIdHasher`].
pub type StreamIdMap<V> = HashMap<u32, V, BuildHasherDefault<StreamIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_the_high_bits_and_the_map_works() {
        let h = |n: u32| {
            let mut s = StreamIdHasher::default();
            s.write_u32(n);
            s.finish()
        };
        // Consecutive odd ids differ in the top 7 bits hashbrown uses for its control bytes.
        let tops: std::collections::HashSet<u64> = (0..64).map(|i| h(2 * i + 1) >> 57).collect();
        assert!(tops.len() > 32, "{}", tops.len());
        let mut m = StreamIdMap::default();
        for id in (1..2000).step_by(2) {
            m.insert(id, id * 3);
        }
        assert_eq!(m.get(&1999), Some(&5997));
        assert_eq!(m.remove(&1), Some(3));
        assert_eq!(m.len(), 999);
    }
}
