//! Shared by the HPACK differential targets: our `hpack::Decoder` and loona-hpack's decoder (an
//! independent implementation) decode the same header blocks of one connection side by side,
//! and must agree on success or failure and on the decoded list.
//!
//! Both are configured alike: the same `SETTINGS_HEADER_TABLE_SIZE` (the ceiling of size
//! updates; both tables start at 4096 octets) and no header list limit (loona has none, so ours
//! gets `usize::MAX`). The error kinds are not compared, only failure, since each crate names its
//! errors its own way.
//!
//! Excluded on purpose (legitimate differences; the connection is then treated as closed and the
//! rest of the input is skipped, since the two dynamic tables may differ from here on):
//! - Integers with 5 continuation octets: RFC 7541 §5.1 leaves the limit to the implementation.
//!   Ours takes up to 5 (any value up to 2^32 - 1), loona at most 4 (values below about 2^28)
//!   and then fails with `TooManyOctets`. Whenever loona fails that way, ours may do anything.
//! - A dynamic table size update after the first field of a block: §4.2 says it MUST come first;
//!   ours refuses it (`TableSizeUpdateNotAtStart`), loona applies it. Whenever ours fails that
//!   way, loona may do anything.
//! - A block made only of size updates (no field): ours accepts it (nothing in RFC 7541 forbids
//!   it), loona fails with `SizeUpdateAtEnd` (it refuses a block ending in a size update).
//!
//! The never-indexed flag (§6.2.3) is not compared: loona does not report it.

use bytes::Bytes;
use loona_hpack::decoder::{DecoderError, IntegerDecodingError};
use protocols::http2::Fields;
use protocols::http2::hpack::{Decoder, Error};

/// One decoded field from our decoder: name, value, never-indexed.
pub type Field = (Bytes, Bytes, bool);

/// Both decoders for one connection.
pub struct Pair {
    ours: Decoder,
    theirs: loona_hpack::Decoder<'static>,
}

/// What one block did to the pair.
pub enum Step {
    /// Both decoded it, to the same list (ours, with the never-indexed flags).
    #[allow(dead_code, reason = "hpack_diff only asks whether a block decoded")]
    Decoded(Vec<Field>),
    /// Both refused it, or they differ in an excluded way: the connection ends.
    Closed,
}

impl Pair {
    /// Both decoders with `max_table_size` as our `SETTINGS_HEADER_TABLE_SIZE`.
    pub fn new(max_table_size: usize) -> Self {
        let mut theirs = loona_hpack::Decoder::new();
        theirs.set_max_allowed_table_size(max_table_size);
        Self {
            ours: Decoder::new(max_table_size),
            theirs,
        }
    }

    /// A new `SETTINGS_HEADER_TABLE_SIZE`, acknowledged by the peer: later size updates above
    /// `n` are refused by both.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.ours.set_max_table_size(n);
        self.theirs.set_max_allowed_table_size(n);
    }

    /// Decodes one complete header block with both; panics when they disagree in a way the
    /// module documentation does not exclude.
    pub fn decode(&mut self, block: &[u8]) -> Step {
        let mut out = Fields::new();
        let ours = self.ours.decode(block, usize::MAX, &mut out);
        let fields = triples(&out);
        let theirs = self.theirs.decode(block);
        match (ours, theirs) {
            (Ok(()), Ok(list)) => {
                let same = list.len() == fields.len()
                    && fields
                        .iter()
                        .zip(&list)
                        .all(|((n1, v1, _), (n2, v2))| n1[..] == n2[..] && v1[..] == v2[..]);
                assert!(
                    same,
                    "decoded lists differ on {block:02x?}\n ours:   {:?}\n theirs: {:?}",
                    show(fields.iter().map(|(n, v, _)| (&n[..], &v[..]))),
                    show(list.iter().map(|(n, v)| (&n[..], &v[..]))),
                );
                Step::Decoded(fields)
            }
            (Err(_), Err(_)) => Step::Closed,
            (_, Err(DecoderError::IntegerDecodingError(IntegerDecodingError::TooManyOctets))) => {
                Step::Closed
            }
            (Err(Error::TableSizeUpdateNotAtStart), _) => Step::Closed,
            (Ok(()), Err(DecoderError::SizeUpdateAtEnd)) if fields.is_empty() => Step::Closed,
            (ours, theirs) => panic!(
                "decoders disagree on {block:02x?}\n ours:   {:?}\n theirs: {:?}",
                ours.map(|()| show(fields.iter().map(|(n, v, _)| (&n[..], &v[..])))),
                theirs.map(|l| show(l.iter().map(|(n, v)| (&n[..], &v[..])))),
            ),
        }
    }
}

/// A decoded list as owned fields with their never-indexed flags.
pub fn triples(fields: &Fields) -> Vec<Field> {
    (fields.iter().enumerate())
        .map(|(i, (n, v))| {
            let (n, v) = (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v));
            (n, v, fields.is_sensitive(i))
        })
        .collect()
}

/// A field list as readable text for a failure message.
fn show<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<String> {
    fields
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
}
