//! Test-only filters that need to see bytes, configured from TOML like the real ones
//! (`test_checksum`, `test_frames`), to drive the relay's copy path and the `Skip` contract.
//! Each records what it saw when its connection closes ([`take_reports`]).

use std::sync::Mutex;

use super::{Dir, Need};

/// What a probe saw on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// `test_checksum`: FNV-1a and length of the bytes seen each way.
    Checksum { up: (u64, u64), down: (u64, u64) },
    /// `test_frames`: the frame lengths read (client -> upstream), bytes seen, bytes skipped.
    Frames {
        lengths: Vec<u32>,
        seen: u64,
        skipped: u64,
    },
}

static REPORTS: Mutex<Vec<Report>> = Mutex::new(Vec::new());

/// The first report of a closed connection that `pick` wants (and forgets it); tests running
/// at once leave each other's reports alone.
pub(crate) fn take_report(pick: impl Fn(&Report) -> bool) -> Option<Report> {
    let mut reports = REPORTS.lock().unwrap();
    let i = reports.iter().position(pick)?;
    Some(reports.remove(i))
}

/// FNV-1a over a stream, and its length (the tests' checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fnv(pub(crate) u64, pub(crate) u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.1 += data.len() as u64;
    }
}

/// One probe's per-connection state.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Needs every byte both ways.
    Checksum { opened: bool, up: Fnv, down: Fnv },
    /// Client -> upstream: frames of a 4-byte big-endian length (header included, as
    /// MongoDB's `messageLength`) and a body; reads headers, skips bodies. Upstream -> client:
    /// nothing.
    Frames {
        opened: bool,
        header: [u8; 4],
        have: usize,
        skip: u64,
        lengths: Vec<u32>,
        seen: u64,
        skipped: u64,
    },
}

impl Probe {
    pub(crate) fn checksum() -> Self {
        Self::Checksum {
            opened: false,
            up: Fnv::new(),
            down: Fnv::new(),
        }
    }

    pub(crate) fn frames() -> Self {
        Self::Frames {
            opened: false,
            header: [0; 4],
            have: 0,
            skip: 0,
            lengths: Vec::new(),
            seen: 0,
            skipped: 0,
        }
    }

    pub(crate) fn on_new_connection(&mut self) {
        match self {
            Self::Checksum { opened, .. } | Self::Frames { opened, .. } => *opened = true,
        }
    }

    pub(crate) fn need(&self, dir: Dir) -> Need {
        match (self, dir) {
            (Self::Checksum { .. }, _) => Need::Bytes,
            (Self::Frames { skip, .. }, Dir::ToUpstream) if *skip > 0 => Need::Skip(*skip),
            (Self::Frames { .. }, Dir::ToUpstream) => Need::Bytes,
            (Self::Frames { .. }, Dir::ToDownstream) => Need::Nothing,
        }
    }

    pub(crate) fn on_bytes(&mut self, dir: Dir, bytes: &[u8]) -> usize {
        match self {
            Self::Checksum { up, down, .. } => {
                match dir {
                    Dir::ToUpstream => up.update(bytes),
                    Dir::ToDownstream => down.update(bytes),
                }
                bytes.len()
            }
            Self::Frames {
                header,
                have,
                skip,
                lengths,
                seen,
                ..
            } => {
                assert_eq!(dir, Dir::ToUpstream, "needs nothing the other way");
                assert_eq!(*skip, 0, "shown bytes it skips");
                let n = bytes.len().min(4 - *have);
                header[*have..*have + n].copy_from_slice(&bytes[..n]);
                *have += n;
                *seen += n as u64;
                if *have == 4 {
                    let len = u32::from_be_bytes(*header);
                    lengths.push(len);
                    *skip = u64::from(len.saturating_sub(4));
                    *have = 0;
                }
                n
            }
        }
    }

    pub(crate) fn on_passed(&mut self, dir: Dir, n: u64) {
        match self {
            Self::Checksum { .. } => panic!("needs bytes, was told counts ({dir:?}, {n})"),
            Self::Frames { skip, skipped, .. } => {
                assert!(n <= *skip, "told of {n} bytes, skipping {skip}");
                *skip -= n;
                *skipped += n;
            }
        }
    }

    pub(crate) fn on_close(&mut self) {
        let report = match self {
            Self::Checksum { opened, up, down } => {
                assert!(*opened);
                Report::Checksum {
                    up: (up.0, up.1),
                    down: (down.0, down.1),
                }
            }
            Self::Frames {
                opened,
                lengths,
                seen,
                skipped,
                ..
            } => {
                assert!(*opened);
                Report::Frames {
                    lengths: std::mem::take(lengths),
                    seen: *seen,
                    skipped: *skipped,
                }
            }
        };
        REPORTS.lock().unwrap().push(report);
    }
}
