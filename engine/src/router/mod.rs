//! L7 routing: pick a virtual host by authority, then the first route whose matchers all hold.
//!
//! A [`RouteTable`] is compiled once from configuration (regexes compiled, names lowercased,
//! clusters resolved to [`ClusterId`]s) and is immutable afterwards; matching allocates nothing.
//! This module decides *where* a request goes; it does not touch the request or any socket.
//! The table's types and their compilation live in `config::route` (the config holds compiled
//! tables); they are re-exported here, and this module adds the matching.

use crate::config::ClusterId;
pub use crate::config::route::{
    Action, HeaderToAdd, MAX_DOMAIN_LEN, REGEX_SIZE_LIMIT, Redirect, Route, RouteFilters,
    RouteTable, VirtualHost, WeightedClusters,
};

/// What the router needs to know about a request. Implemented by the HTTP/1 (and later
/// HTTP/2) request types so one router serves both codecs.
pub trait RequestInfo {
    /// Host header or `:authority`, as received (may include a port).
    fn authority(&self) -> &[u8];
    /// Path without the query string, as received (not decoded).
    fn path(&self) -> &[u8];
    /// Query string without the leading `?`; empty when there is none.
    fn query(&self) -> &[u8];
    /// Value of the first header field with this name; `name` is lowercase ASCII.
    fn header(&self, name: &[u8]) -> Option<&[u8]>;
    /// Request method (`GET`, ...).
    fn method(&self) -> &[u8];
}

/// The request field that carries a client's verified certificate identity (Envoy's name).
pub(crate) const XFCC: &[u8] = b"x-forwarded-client-cert";

/// A request as its connection's routes see it: its own fields, except that
/// `x-forwarded-client-cert` is the identity of the client's verified certificate (mTLS) —
/// the value ringway forwards — or absent, never a value the client sent. So header matchers
/// on `x-forwarded-client-cert` route by who the client proved to be.
pub(crate) struct Routed<'a, R: ?Sized> {
    /// The request.
    pub(crate) req: &'a R,
    /// The connection's `x-forwarded-client-cert` value, if its client was verified.
    pub(crate) xfcc: Option<&'a [u8]>,
}

impl<R: RequestInfo + ?Sized> RequestInfo for Routed<'_, R> {
    fn authority(&self) -> &[u8] {
        self.req.authority()
    }
    fn path(&self) -> &[u8] {
        self.req.path()
    }
    fn query(&self) -> &[u8] {
        self.req.query()
    }
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        if name == XFCC {
            return self.xfcc;
        }
        self.req.header(name)
    }
    fn method(&self) -> &[u8] {
        self.req.method()
    }
}

pub(crate) mod hash;
pub mod matcher;
#[cfg(test)]
mod tests;

pub(crate) use hash::{RequestHash, SetCookie};

impl RouteTable {
    /// Some route matches on the request header `name` (lowercase): a filter that changes it
    /// changes what routing sees.
    pub fn reads_header(&self, name: &[u8]) -> bool {
        self.virtual_hosts.iter().any(|vh| {
            vh.routes
                .iter()
                .any(|r| r.matcher.headers.iter().any(|h| h.name.as_ref() == name))
        })
    }

    /// The route for `req`: the virtual host chosen by [`Self::virtual_host`], then its first
    /// route whose matchers all hold. `None` means no vhost or no route matched (404 `NR`).
    /// Allocates nothing.
    pub fn route<R: RequestInfo + ?Sized>(&self, req: &R) -> Option<&Route> {
        self.virtual_host(req.authority())?
            .routes
            .iter()
            .find(|r| r.matcher.matches(req))
    }

    /// The virtual host for an authority (Envoy's order): an exact domain equal to the whole
    /// authority (so `host:port` domains work), then an exact domain equal to the authority
    /// without its `:port`, then the longest `*.suffix` whose `*` covers at least one
    /// character, then `*`. Comparison ignores ASCII case.
    pub fn virtual_host(&self, authority: &[u8]) -> Option<&VirtualHost> {
        let host = strip_port(authority);
        let exact = |name: &[u8]| {
            if self.exact_domains.is_empty() {
                return None;
            }
            // Lowercase into a stack buffer; longer names cannot equal a configured domain.
            let mut buf = [0u8; MAX_DOMAIN_LEN];
            let lower = buf.get_mut(..name.len())?;
            lower.copy_from_slice(name);
            lower.make_ascii_lowercase();
            self.exact_domains.get(&*lower).copied()
        };
        let index = exact(authority)
            .or_else(|| {
                (host.len() != authority.len())
                    .then(|| exact(host))
                    .flatten()
            })
            .or_else(|| {
                self.suffix_domains
                    .iter()
                    .find(|(suffix, _)| {
                        host.len() > suffix.len()
                            && host
                                .get(host.len() - suffix.len()..)
                                .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
                    })
                    .map(|&(_, i)| i)
            })
            .or(self.any_domain)?;
        self.virtual_hosts.get(index)
    }

    /// The virtual hosts, in configuration order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.virtual_hosts
    }
}

/// `host:port` -> `host`, `[v6]:port` -> `[v6]`; anything else unchanged.
fn strip_port(authority: &[u8]) -> &[u8] {
    let Some(colon) = authority.iter().rposition(|&b| b == b':') else {
        return authority;
    };
    let (host, port) = authority.split_at(colon);
    let port_ok = port.len() > 1 && port.iter().skip(1).all(u8::is_ascii_digit);
    // A bare IPv6 address has colons but no brackets: leave it alone.
    let host_ok = !host.contains(&b':') || (host.starts_with(b"[") && host.ends_with(b"]"));
    if port_ok && host_ok { host } else { authority }
}

impl Route {
    /// The path to send upstream: with `prefix_rewrite`, the matched prefix (its length; the
    /// match may have ignored case) is replaced; otherwise `path` unchanged. Writes into `dst`
    /// (cleared first) and returns `true` when it rewrote, `false` when `path` stays as is.
    pub fn rewrite_path(&self, path: &[u8], dst: &mut Vec<u8>) -> bool {
        let (Some(rewrite), matcher::PathMatch::Prefix { value, .. }) =
            (&self.prefix_rewrite, &self.matcher.path)
        else {
            return false;
        };
        let Some(rest) = path.get(value.len()..) else {
            return false;
        };
        dst.clear();
        dst.extend_from_slice(rewrite);
        dst.extend_from_slice(rest);
        true
    }
}

impl WeightedClusters {
    /// The cluster whose cumulative weight range contains `random % total`. Deterministic:
    /// the caller brings the randomness (a per-worker PRNG, or a hash for stickiness).
    pub fn pick(&self, random: u32) -> ClusterId {
        let r = random % self.total.max(1);
        let i = self
            .entries
            .partition_point(|&(_, cumulative)| cumulative <= r);
        self.entries
            .get(i)
            .or_else(|| self.entries.last())
            .map_or(0, |&(cluster, _)| cluster)
    }

    /// `(cluster, weight)` pairs in configuration order.
    pub fn clusters(&self) -> impl Iterator<Item = (ClusterId, u32)> + '_ {
        let mut previous = 0;
        self.entries.iter().map(move |&(cluster, cumulative)| {
            let weight = cumulative - previous;
            previous = cumulative;
            (cluster, weight)
        })
    }
}

impl Redirect {
    /// Writes the `Location` value, `scheme://host/path?query`, into `dst` (appending).
    ///
    /// Configured parts replace the request's: `scheme` (else `request_scheme`), `host` (else
    /// the request authority, port included), `path` (else the request path). The request
    /// query is kept unless `strip_query` is set or the configured path carries its own `?`.
    pub fn location<R: RequestInfo + ?Sized>(
        &self,
        req: &R,
        request_scheme: &[u8],
        dst: &mut Vec<u8>,
    ) {
        dst.extend_from_slice(self.scheme.as_deref().unwrap_or(request_scheme));
        dst.extend_from_slice(b"://");
        dst.extend_from_slice(self.host.as_deref().unwrap_or_else(|| req.authority()));
        let path = self.path.as_deref().unwrap_or_else(|| req.path());
        dst.extend_from_slice(path);
        let query = req.query();
        if !self.strip_query && !query.is_empty() && !path.contains(&b'?') {
            dst.push(b'?');
            dst.extend_from_slice(query);
        }
    }
}
