//! Route matchers: path (prefix, exact, anchored regex), header and query-parameter matchers.
//!
//! Built once by `compile`, evaluated per request without allocating. Semantics follow Envoy's
//! `RouteMatch`: all matchers of a route must hold. Header matchers look at the *first* field
//! with the name. Query matchers split `query()` on `&` and `=` and compare the raw bytes: no
//! percent-decoding and no `+` -> space, so `a%20b` only matches a configured `a%20b`. A query
//! parameter without `=` has the empty value. This module does not pick virtual hosts.

use super::RequestInfo;
pub(crate) use crate::config::route::matcher::{HeaderMatcher, PathMatch, RouteMatch, ValueMatch};

impl RouteMatch {
    /// Whether `req` takes this route.
    pub(crate) fn matches<R: RequestInfo + ?Sized>(&self, req: &R) -> bool {
        self.path.matches(req.path())
            && self.headers.iter().all(|h| h.matches(req.header(&h.name)))
            && self
                .query
                .iter()
                .all(|q| q.value.matches(query_param(req.query(), &q.name)))
    }
}

impl PathMatch {
    fn matches(&self, path: &[u8]) -> bool {
        match self {
            Self::Prefix {
                value,
                case_sensitive,
            } => path
                .get(..value.len())
                .is_some_and(|head| bytes_eq(head, value, *case_sensitive)),
            Self::Exact {
                value,
                case_sensitive,
            } => bytes_eq(path, value, *case_sensitive),
            Self::Regex(re) => re.is_match(path),
        }
    }
}

fn bytes_eq(a: &[u8], b: &[u8], case_sensitive: bool) -> bool {
    if case_sensitive {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

impl ValueMatch {
    /// `value` is `None` when the header / parameter is absent: only `present = false` holds.
    fn matches(&self, value: Option<&[u8]>) -> bool {
        let Some(v) = value else {
            return matches!(self, Self::Present(false));
        };
        match self {
            Self::Exact(want) => v == want.as_ref(),
            Self::Prefix(want) => v.starts_with(want),
            Self::Suffix(want) => v.ends_with(want),
            Self::Regex(re) => re.is_match(v),
            Self::Present(want) => *want,
        }
    }
}

impl HeaderMatcher {
    /// Envoy: `invert` negates the result, except that an absent header never satisfies a
    /// value matcher (inverted or not); `present = false` is the way to require absence.
    fn matches(&self, value: Option<&[u8]>) -> bool {
        match (value, &self.value) {
            (None, ValueMatch::Present(_)) | (Some(_), _) => {
                self.value.matches(value) != self.invert
            }
            (None, _) => false,
        }
    }
}

/// Value of the first `name` parameter in `query` (`a=1&b&c=3`); `Some(b"")` for `b`.
pub(crate) fn query_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (pair.get(..i)?, pair.get(i + 1..)?),
            None => (pair, &b""[..]),
        };
        (key == name).then_some(value)
    })
}
