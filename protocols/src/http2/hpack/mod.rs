//! HPACK header compression for HTTP/2 (RFC 7541).
//!
//! Owns the wire format of header blocks: prefixed integers (§5.1), string literals with the
//! Huffman code (§5.2, Appendix B), the static and dynamic tables (§2.3, §4, Appendix A), and
//! every field representation (§6). [`Decoder`] turns one complete header block into a packed
//! [`crate::http2::Fields`] list; [`Encoder`] turns fields into one header block.
//!
//! It does not own framing: the caller reassembles HEADERS + CONTINUATION into one block before
//! decoding, splits an encoded block into frames, and applies the HTTP/2 message rules of
//! RFC 9113 §8.2 (lowercase names, pseudo-header order, connection-specific fields); see
//! [`is_valid_name`] and [`is_valid_value`] for the field checks.

mod decoder;
mod encoder;
pub mod huffman;
mod table;

#[cfg(test)]
mod tests;

pub use decoder::{Decoder, is_valid_name, is_valid_value};
pub use encoder::Encoder;

use std::fmt;

/// The protocol's initial dynamic table size, and the default `SETTINGS_HEADER_TABLE_SIZE`
/// (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block could not be decoded.
///
/// Every variant is a connection error of type `COMPRESSION_ERROR` (RFC 9113 §4.3), except
/// [`Error::HeaderListTooLarge`]: the block was decoded in full and the tables stay in sync, so
/// the caller may refuse only the stream (431 / `RST_STREAM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A prefixed integer has more than 5 continuation octets or exceeds 2^32 - 1 (§5.1).
    IntegerOverflow,
    /// Index 0, or an index beyond the static plus dynamic table (§2.3.3).
    InvalidIndex,
    /// Huffman data with padding over 7 bits, padding that is not all ones, or EOS (§5.2).
    InvalidHuffman,
    /// The decoded header list exceeds the caller's limit (RFC 9113 §6.5.2
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`).
    HeaderListTooLarge,
    /// A dynamic table size update above our `SETTINGS_HEADER_TABLE_SIZE` (§4.2, §6.3).
    TableSizeUpdateTooLarge,
    /// A dynamic table size update after the first field of a block (§4.2).
    TableSizeUpdateNotAtStart,
    /// The block ends inside an integer, a string, or a representation.
    Truncated,
}

impl Error {
    /// Whether this error must end the connection with `COMPRESSION_ERROR` (RFC 9113 §4.3).
    pub fn is_compression_error(self) -> bool {
        !matches!(self, Self::HeaderListTooLarge)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IntegerOverflow => "hpack: integer overflow",
            Self::InvalidIndex => "hpack: invalid table index",
            Self::InvalidHuffman => "hpack: invalid huffman code",
            Self::HeaderListTooLarge => "hpack: header list too large",
            Self::TableSizeUpdateTooLarge => "hpack: table size update above the setting",
            Self::TableSizeUpdateNotAtStart => "hpack: table size update after a field",
            Self::Truncated => "hpack: truncated header block",
        })
    }
}

impl std::error::Error for Error {}
