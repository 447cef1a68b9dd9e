//! The `grpc-timeout` request header (PROTOCOL-HTTP2.md, "Timeout"):
//!
//! ```text
//! Timeout      → "grpc-timeout" TimeoutValue TimeoutUnit
//! TimeoutValue → {positive integer as ASCII string of at most 8 digits}
//! TimeoutUnit  → Hour "H" / Minute "M" / Second "S" / Millisecond "m" / Microsecond "u" /
//!                Nanosecond "n"
//! ```

use core::fmt;
use std::time::Duration;

/// Most digits a TimeoutValue may have.
pub const MAX_TIMEOUT_DIGITS: usize = 8;

/// Largest TimeoutValue: eight nines.
const MAX_VALUE: u64 = 99_999_999;

/// Why a `grpc-timeout` value is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No digits before the unit (or an empty value).
    Empty,
    /// More than [`MAX_TIMEOUT_DIGITS`] digits.
    TooManyDigits,
    /// A byte other than an ASCII digit in the TimeoutValue.
    InvalidDigit,
    /// The last byte is not one of `H M S m u n`.
    InvalidUnit,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "grpc-timeout has no value",
            Self::TooManyDigits => "grpc-timeout has more than 8 digits",
            Self::InvalidDigit => "grpc-timeout value is not a decimal number",
            Self::InvalidUnit => "grpc-timeout unit is not one of H M S m u n",
        })
    }
}

impl std::error::Error for Error {}

/// Nanoseconds per unit, finest first: the order [`format_timeout`] tries them in.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// Parses a `grpc-timeout` header value such as `100m` or `5S`.
///
/// The grammar asks for a positive integer; `0` is accepted too (as gRPC's own
/// implementations do) and means the deadline has already passed. Surrounding whitespace is
/// refused: HTTP field values reach us trimmed.
pub fn parse_timeout(value: &[u8]) -> Result<Duration, Error> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(Error::Empty);
    };
    let Some(&(_, nanos_per_unit)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(Error::InvalidUnit);
    };
    if digits.is_empty() {
        return Err(Error::Empty);
    }
    if digits.len() > MAX_TIMEOUT_DIGITS {
        return Err(Error::TooManyDigits);
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(Error::InvalidDigit);
        }
        n = n * 10 + u64::from(d - b'0');
    }
    // At most 99_999_999 H = 3.6e20 ns: over u64, so whole seconds and nanoseconds apart.
    let secs_per_unit = nanos_per_unit / 1_000_000_000;
    Ok(if secs_per_unit > 0 {
        Duration::from_secs(n * secs_per_unit)
    } else {
        Duration::from_nanos(n * nanos_per_unit)
    })
}

/// A formatted `grpc-timeout` value, held inline (at most 9 bytes, no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FormattedTimeout {
    buf: [u8; MAX_TIMEOUT_DIGITS + 1],
    len: u8,
}

impl FormattedTimeout {
    /// The header value bytes, e.g. `b"200m"`.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The header value as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Display for FormattedTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for FormattedTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FormattedTimeout({:?})", self.as_str())
    }
}

/// Formats a duration as a `grpc-timeout` value in the finest unit whose count fits in eight
/// digits, rounding up to that unit so the peer never sees a shorter deadline than ours.
/// Durations past 99,999,999 hours are sent as `99999999H`.
pub fn format_timeout(d: Duration) -> FormattedTimeout {
    let nanos = d.as_nanos();
    let (unit, value) = UNITS
        .iter()
        .find_map(|&(unit, per)| {
            let value = nanos.div_ceil(u128::from(per));
            (value <= u128::from(MAX_VALUE)).then_some((unit, value as u64))
        })
        .unwrap_or((b'H', MAX_VALUE));
    let mut digits = [0u8; MAX_TIMEOUT_DIGITS];
    let mut start = MAX_TIMEOUT_DIGITS;
    let mut v = value;
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || start == 0 {
            break;
        }
    }
    let mut out = FormattedTimeout {
        buf: [0; MAX_TIMEOUT_DIGITS + 1],
        len: 0,
    };
    let n = MAX_TIMEOUT_DIGITS - start;
    if let (Some(dst), Some(src)) = (out.buf.get_mut(..n), digits.get(start..)) {
        dst.copy_from_slice(src);
    }
    if let Some(slot) = out.buf.get_mut(n) {
        *slot = unit;
    }
    out.len = (n + 1) as u8;
    out
}
