//! A request's hash for the consistent-hash load balancers, by its route's `hash_policy`
//! (Envoy's route hash policies): the first policy that finds a value in the request wins;
//! none: no hash (the balancer picks at random).
//!
//! A cookie policy with a `ttl` whose cookie the request lacks makes one up: a random value
//! (drawn by the caller, so this stays pure), hashed like a received one, and a
//! [`SetCookie`] for the response, so the client's next requests carry it and stick to the
//! same endpoint.

use std::net::IpAddr;

use super::RequestInfo;
use super::matcher::query_param;
use crate::config::lb_table::hash_key;
use crate::config::route::{HashPolicy, Route};

/// A cookie to set on the response (a generated hash cookie): the policy that names it and
/// its value. Two words: it rides on the response's header edits, copied with every head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetCookie<'a> {
    /// A [`HashPolicy::Cookie`] with a `ttl`.
    pub(crate) policy: &'a HashPolicy,
    /// Written as 16 lowercase hex digits.
    pub(crate) value: u64,
}

impl SetCookie<'_> {
    /// The `set-cookie` field value: `name=value; Max-Age=N[; Path=p]; HttpOnly`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let HashPolicy::Cookie { name, ttl, path } = self.policy else {
            return;
        };
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(&hex(self.value));
        out.extend_from_slice(b"; Max-Age=");
        let max_age = ttl.map_or(1, |t| t.as_secs().max(1));
        out.extend_from_slice(itoa::Buffer::new().format(max_age).as_bytes());
        if let Some(p) = path {
            out.extend_from_slice(b"; Path=");
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"; HttpOnly");
    }
}

/// What the hash policy made of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestHash<'a> {
    /// `None`: no policy found a value.
    pub(crate) hash: Option<u64>,
    /// A generated cookie to send back.
    pub(crate) set_cookie: Option<SetCookie<'a>>,
}

/// The value of cookie `name` in a `cookie` field (`a=1; b="2"`), quotes stripped.
fn cookie<'c>(field: &'c [u8], name: &[u8]) -> Option<&'c [u8]> {
    field.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        if k != name {
            return None;
        }
        Some(
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v),
        )
    })
}

fn hex(v: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, d) in out.iter_mut().enumerate() {
        *d = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

impl Route {
    /// The request's hash by this route's `hash_policy`; `client` is the client's address,
    /// `fresh` draws a random value for a cookie to generate. Allocates nothing.
    pub(crate) fn request_hash<R: RequestInfo + ?Sized>(
        &self,
        req: &R,
        client: IpAddr,
        fresh: impl FnOnce() -> u64,
    ) -> RequestHash<'_> {
        for p in &self.hash_policy {
            let hash = match p {
                HashPolicy::Header(name) => req.header(name).map(hash_key),
                HashPolicy::QueryParameter(name) => query_param(req.query(), name).map(hash_key),
                HashPolicy::SourceIp => Some(match client {
                    IpAddr::V4(a) => hash_key(&a.octets()),
                    IpAddr::V6(a) => hash_key(&a.octets()),
                }),
                HashPolicy::Cookie { name, ttl, .. } => {
                    match req.header(b"cookie").and_then(|f| cookie(f, name)) {
                        Some(v) => Some(hash_key(v)),
                        None => {
                            if ttl.is_none() {
                                continue;
                            }
                            let value = fresh();
                            return RequestHash {
                                hash: Some(hash_key(&hex(value))),
                                set_cookie: Some(SetCookie { policy: p, value }),
                            };
                        }
                    }
                }
            };
            if hash.is_some() {
                return RequestHash {
                    hash,
                    set_cookie: None,
                };
            }
        }
        RequestHash::default()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn cookies_are_found_by_name_with_quotes_stripped() {
        assert_eq!(cookie(b"a=1; sid=abc", b"sid"), Some(&b"abc"[..]));
        assert_eq!(cookie(b"sid=\"abc\"", b"sid"), Some(&b"abc"[..]));
        assert_eq!(cookie(b"xsid=1;sid=2", b"sid"), Some(&b"2"[..]));
        assert_eq!(cookie(b"a=1", b"sid"), None);
        assert_eq!(&hex(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        let policy = HashPolicy::Cookie {
            name: Bytes::from_static(b"sid"),
            ttl: Some(std::time::Duration::from_secs(3600)),
            path: Some(Bytes::from_static(b"/")),
        };
        let c = SetCookie {
            policy: &policy,
            value: 1,
        };
        let mut out = Vec::new();
        c.write(&mut out);
        assert_eq!(out, b"sid=0000000000000001; Max-Age=3600; Path=/; HttpOnly");
    }
}
