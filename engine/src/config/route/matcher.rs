//! Route matchers as compiled: path (prefix, exact, anchored regex), header and query-parameter
//! matchers. Evaluated by `crate::router::matcher`.

use bytes::Bytes;
use regex::bytes::Regex;

/// Everything a request must satisfy to take a route.
#[derive(Debug)]
pub(crate) struct RouteMatch {
    pub(crate) path: PathMatch,
    pub(crate) headers: Vec<HeaderMatcher>,
    pub(crate) query: Vec<QueryMatcher>,
}

/// How the path is compared.
#[derive(Debug)]
pub(crate) enum PathMatch {
    /// Path starts with the bytes.
    Prefix { value: Bytes, case_sensitive: bool },
    /// Path equals the bytes.
    Exact { value: Bytes, case_sensitive: bool },
    /// Whole path matches (compiled as `^(?:re)$`, case folding per config).
    Regex(Regex),
}

/// A comparison of one header or query value.
#[derive(Debug)]
pub(crate) enum ValueMatch {
    Exact(Bytes),
    Prefix(Bytes),
    Suffix(Bytes),
    /// Anchored at both ends.
    Regex(Regex),
    /// `true`: the field exists; `false`: it does not.
    Present(bool),
}

/// Matches the first header field named `name` (lowercase).
#[derive(Debug)]
pub(crate) struct HeaderMatcher {
    pub(crate) name: Bytes,
    pub(crate) value: ValueMatch,
    pub(crate) invert: bool,
}

/// Matches the first query parameter named `name`.
#[derive(Debug)]
pub(crate) struct QueryMatcher {
    pub(crate) name: Bytes,
    pub(crate) value: ValueMatch,
}
