//! gRPC status codes (`doc/statuscodes.md`), the HTTP-status mapping for responses without a
//! `grpc-status` (`doc/http-grpc-status-mapping.md`), and content-type detection.

use core::fmt;

/// A gRPC status code, as carried in the `grpc-status` trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, or an error from another address space without enough information.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity the client tried to create already exists.
    AlreadyExists = 6,
    /// The caller is not permitted to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted (a quota, a message size limit, memory).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// An invariant expected by the underlying system was broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

/// Every code, indexed by its number.
const ALL: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// `grpc-status` values, indexed by code number.
const DECIMAL: [&[u8]; 17] = [
    b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11", b"12", b"13", b"14",
    b"15", b"16",
];

impl Code {
    /// The code with this number; `None` outside 0..=16 (a receiver treats such a status as
    /// [`Code::Unknown`]).
    pub fn from_u32(n: u32) -> Option<Self> {
        ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// Parses a `grpc-status` value: decimal digits, no sign or spaces. `None` when it is not
    /// a number in 0..=16.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.is_empty() || value.len() > 2 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = value
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
        Self::from_u32(n)
    }

    /// The code's number.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The `grpc-status` header value, e.g. `b"14"`.
    pub fn as_header_value(self) -> &'static [u8] {
        DECIMAL
            .get(usize::from(self.as_u8()))
            .copied()
            .unwrap_or(b"2")
    }

    /// The canonical name, e.g. `"DEADLINE_EXCEEDED"` (statuscodes.md).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The status a client reports for an HTTP response that carries no `grpc-status`
    /// (http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED, 403
    /// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else
    /// UNKNOWN.
    pub fn from_http_status(status: u16) -> Self {
        match status {
            400 => Self::Internal,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::Unimplemented,
            429 | 502 | 503 | 504 => Self::Unavailable,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a `content-type` value names gRPC: `application/grpc` alone or followed by `+`
/// (a subtype such as `+proto`) or `;` (parameters). The type is compared without regard to
/// ASCII case (media types are case-insensitive); `application/grpc-web` is not gRPC over
/// HTTP/2 and is refused.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const BASE: &[u8] = b"application/grpc";
    let Some((head, rest)) = value.split_at_checked(BASE.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(BASE) && matches!(rest.first(), None | Some(b'+' | b';'))
}
