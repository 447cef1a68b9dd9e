//! Consistent hashing for the `ring_hash` and `maglev` load balancers: the stable key hash
//! ([`hash_key`]) and the two lookup tables ([`Ring`], [`Maglev`]), both weighted.
//!
//! A table is compiled with the config, like the route tables ([`super::ClusterConfig`]'s
//! `lb_table`), so it is built once per configuration and shared read-only by every worker;
//! a pick is a binary search (ring) or one index (Maglev), never a rebuild. Pure data: no
//! clock, no randomness, so the same endpoints give the same table in every worker and every
//! process, and the same key reaches the same endpoint.
//!
//! Does not: decide what a request's key is (the route's `hash_policy`, `crate::router`), or
//! what to do without one (the balancer, `crate::cluster::lb`, picks at random).

use std::fmt;

use super::{Endpoint, LbPolicy};

/// Ring points per unit of endpoint weight (ketama's 160 per server): fixed, so an endpoint's
/// points do not change when others come and go.
pub const RING_POINTS_PER_WEIGHT: u64 = 160;
/// Ring points per cluster at most (1 MiB of table): past it, fewer points per unit of
/// weight (at least one).
pub const MAX_RING_SIZE: u64 = 1 << 16;
/// Maglev lookup table size (a prime; Envoy's default).
pub const MAGLEV_TABLE_SIZE: u64 = 65_537;

/// The hash of a request's key: FNV-1a, then MurmurHash3's 64-bit finaliser so nearby keys
/// spread over the whole range. Not keyed: the same key hashes the same in every worker and
/// every process (consistent hashing needs exactly that).
pub fn hash_key(key: &[u8]) -> u64 {
    hash_seeded(key, 0)
}

fn hash_seeded(key: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    fmix64(h)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// An endpoint's name in the tables: its address, as Envoy names hosts.
fn endpoint_key(e: &Endpoint) -> String {
    e.address.to_string()
}

/// The lookup table of a consistent-hash cluster. Equal when built from equal endpoints (a
/// reload compares clusters with it).
#[derive(PartialEq, Eq)]
pub enum Table {
    /// `ring_hash`.
    Ring(Ring),
    /// `maglev`.
    Maglev(Maglev),
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ring(r) => write!(f, "Ring({} points)", r.points.len()),
            Self::Maglev(m) => write!(f, "Maglev({} entries)", m.table.len()),
        }
    }
}

impl Table {
    /// The table for a cluster with this policy; `None` for policies that do not hash (and
    /// for a cluster without endpoints).
    pub fn build(policy: LbPolicy, endpoints: &[Endpoint]) -> Option<Self> {
        if endpoints.is_empty() {
            return None;
        }
        match policy {
            LbPolicy::RingHash => Some(Self::Ring(Ring::new(endpoints))),
            LbPolicy::Maglev => Some(Self::Maglev(Maglev::new(endpoints))),
            LbPolicy::RoundRobin | LbPolicy::LeastRequest | LbPolicy::Random => None,
        }
    }

    /// The endpoint index for a request hash.
    pub fn pick(&self, hash: u64) -> usize {
        match self {
            Self::Ring(r) => r.pick(hash),
            Self::Maglev(m) => m.pick(hash),
        }
    }

    /// The first endpoint `usable` accepts, walking the table on from the hash's entry (the
    /// ring's next points, Maglev's next slots): a key whose endpoint is unhealthy goes to
    /// the same stand-in every time, and other keys do not move. The table is not rebuilt.
    /// `None` if no entry is usable.
    pub fn pick_usable(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Self::Ring(r) => {
                let n = r.points.len();
                let at = r.points.partition_point(|&(p, _)| p < hash);
                (0..n)
                    .map(|k| r.points[(at + k) % n].1 as usize)
                    .find(|&i| usable(i))
            }
            Self::Maglev(m) => {
                let n = m.table.len();
                let at = (hash % n as u64) as usize;
                (0..n)
                    .map(|k| m.table[(at + k) % n] as usize)
                    .find(|&i| usable(i))
            }
        }
    }
}

/// Ketama-style ring (Envoy's ring hash): each endpoint owns [`RING_POINTS_PER_WEIGHT`]
/// points per unit of its weight on a 64-bit circle (fewer for a cluster whose total would
/// pass [`MAX_RING_SIZE`]); a key belongs to the first point at or after its hash. An
/// endpoint's points are `hash("<address>_<i>")` for `i` from 0 and do not depend on the
/// other endpoints, so removing one moves only its keys (Envoy scales points to a minimum
/// ring size instead, which moves some of the others' keys too).
#[derive(Debug, PartialEq, Eq)]
pub struct Ring {
    /// `(point, endpoint index)`, sorted by point.
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub fn new(endpoints: &[Endpoint]) -> Self {
        let total: u64 = endpoints.iter().map(|e| u64::from(e.weight.max(1))).sum();
        let per_weight = RING_POINTS_PER_WEIGHT
            .min(MAX_RING_SIZE / total.max(1))
            .max(1);
        let mut points = Vec::with_capacity((per_weight * total) as usize);
        for (i, e) in endpoints.iter().enumerate() {
            let name = endpoint_key(e);
            let n = (per_weight * u64::from(e.weight.max(1))).max(1);
            for j in 0..n {
                points.push((hash_key(format!("{name}_{j}").as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    pub fn pick(&self, hash: u64) -> usize {
        let at = self.points.partition_point(|&(p, _)| p < hash);
        let (_, i) = self
            .points
            .get(at)
            .or_else(|| self.points.first())
            .copied()
            .unwrap_or_default();
        i as usize
    }

    /// Number of points.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }
}

/// Maglev's lookup table (Eisenbud et al., NSDI 2016, section 3.4), weighted as Envoy does:
/// each endpoint walks its own permutation of the [`MAGLEV_TABLE_SIZE`] slots
/// (`offset + j * skip`, both from hashes of its address) and takes the next free one in its
/// turn; an endpoint of weight `w` takes a turn in `w / max weight` of the rounds. A key's
/// endpoint is `table[hash % size]`. Removing one of N endpoints moves its keys and only a
/// small share of the others' (the paper's minimal disruption).
#[derive(Debug, PartialEq, Eq)]
pub struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    pub fn new(endpoints: &[Endpoint]) -> Self {
        Self::with_size(endpoints, MAGLEV_TABLE_SIZE)
    }

    fn with_size(endpoints: &[Endpoint], m: u64) -> Self {
        struct Build {
            offset: u64,
            skip: u64,
            next: u64,
            weight: u64,
            target: u64,
        }
        let max_weight = endpoints
            .iter()
            .map(|e| u64::from(e.weight.max(1)))
            .max()
            .unwrap_or(1);
        let mut builds: Vec<Build> = endpoints
            .iter()
            .map(|e| {
                let name = endpoint_key(e);
                Build {
                    offset: hash_seeded(name.as_bytes(), 1) % m,
                    skip: hash_seeded(name.as_bytes(), 2) % (m - 1) + 1,
                    next: 0,
                    weight: u64::from(e.weight.max(1)),
                    target: 0,
                }
            })
            .collect();
        const FREE: u32 = u32::MAX;
        let mut table = vec![FREE; m as usize];
        let mut filled = 0;
        let mut round = 0u64;
        while filled < m {
            for (i, b) in builds.iter_mut().enumerate() {
                if filled == m {
                    break;
                }
                // A lighter endpoint skips rounds: it takes one turn per max_weight / weight.
                if round * b.weight < b.target {
                    continue;
                }
                b.target += max_weight;
                let mut c = (b.offset + b.skip * b.next) % m;
                while table[c as usize] != FREE {
                    b.next += 1;
                    c = (b.offset + b.skip * b.next) % m;
                }
                table[c as usize] = i as u32;
                b.next += 1;
                filled += 1;
            }
            round += 1;
        }
        Self {
            table: table.into_boxed_slice(),
        }
    }

    pub fn pick(&self, hash: u64) -> usize {
        self.table[(hash % self.table.len() as u64) as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint {
                address: format!("10.0.{}.{}:80", i / 250, i % 250 + 1)
                    .parse()
                    .unwrap(),
                weight: w,
            })
            .collect()
    }

    fn keys() -> impl Iterator<Item = u64> {
        (0..20_000u32).map(|k| hash_key(format!("user-{k}").as_bytes()))
    }

    fn tables(endpoints: &[Endpoint]) -> [Table; 2] {
        [
            Table::build(LbPolicy::RingHash, endpoints).unwrap(),
            Table::build(LbPolicy::Maglev, endpoints).unwrap(),
        ]
    }

    #[test]
    fn the_key_hash_is_stable() {
        // Fixed values: a change here would move every client to another endpoint.
        assert_eq!(hash_key(b""), fmix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(hash_key(b"alice"), hash_key(b"alice"));
        assert_ne!(hash_key(b"alice"), hash_key(b"bob"));
    }

    #[test]
    fn the_same_key_reaches_the_same_endpoint_in_every_build() {
        let e = eps(&[1, 1, 1, 1, 1]);
        for (a, b) in tables(&e).iter().zip(tables(&e).iter()) {
            for k in keys() {
                assert_eq!(a.pick(k), b.pick(k));
            }
        }
        assert!(Table::build(LbPolicy::Random, &e).is_none());
        assert!(Table::build(LbPolicy::Maglev, &[]).is_none());
    }

    /// Share of keys per endpoint, for 20 000 keys.
    fn shares(t: &Table, n: usize) -> Vec<f64> {
        let mut counts = vec![0u32; n];
        for k in keys() {
            counts[t.pick(k)] += 1;
        }
        counts.iter().map(|&c| f64::from(c) / 20_000.0).collect()
    }

    #[test]
    fn keys_spread_by_weight() {
        let e = eps(&[1, 1, 2, 4]);
        for t in tables(&e) {
            let s = shares(&t, 4);
            let want = [0.125, 0.125, 0.25, 0.5];
            for (got, want) in s.iter().zip(want) {
                assert!((got - want).abs() < want * 0.3, "{t:?} {s:?}");
            }
        }
    }

    /// Removing one of N endpoints: its keys move, and few others do.
    #[test]
    fn removing_one_of_n_endpoints_moves_about_one_nth_of_the_keys() {
        const N: usize = 10;
        let all = eps(&[1; N]);
        let mut fewer = all.clone();
        let gone = fewer.remove(3);
        for (before, after) in tables(&all).iter().zip(tables(&fewer).iter()) {
            let (mut moved, mut moved_others) = (0, 0);
            for k in keys() {
                let was = &all[before.pick(k)];
                let now = &fewer[after.pick(k)];
                if was.address != now.address {
                    moved += 1;
                    if was.address != gone.address {
                        moved_others += 1;
                    }
                }
                assert_ne!(now.address, gone.address);
            }
            let moved = f64::from(moved) / 20_000.0;
            let others = f64::from(moved_others) / 20_000.0;
            // Ideal: 1/N = 0.1, none of the others' keys.
            assert!((0.07..0.15).contains(&moved), "{before:?}: {moved}");
            assert!(
                others < 0.03,
                "{others} of the keys moved between kept endpoints"
            );
        }
    }

    #[test]
    fn ring_size_is_bounded() {
        assert_eq!(Ring::new(&eps(&[1, 2])).len(), 3 * 160);
        let big = Ring::new(&eps(&[128; 10]));
        assert!(big.len() <= MAX_RING_SIZE as usize, "{}", big.len());
        // One point per unit of weight when even that passes the cap.
        assert_eq!(Ring::new(&eps(&[128; 1000])).len(), 128_000);
    }

    #[test]
    fn a_small_maglev_table_is_a_permutation_fill() {
        let t = Maglev::with_size(&eps(&[1, 1, 1]), 7);
        let mut counts = [0; 3];
        for &i in t.table.iter() {
            counts[i as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<i32>(), 7);
        assert!(counts.iter().all(|&c| (2..=3).contains(&c)), "{counts:?}");
    }
}
