//! L7 routing: pick a virtual host by authority, then the first route whose matchers all hold.
//!
//! A [`RouteTable`] is compiled once from configuration (regexes compiled, names lowercased,
//! clusters resolved to [`ClusterId`]s) and is immutable afterwards; matching allocates nothing.
//! This module decides *where* a request goes; it does not touch the request or any socket.

use std::time::Duration;

use bytes::Bytes;

use crate::config::ClusterId;

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

/// The compiled routes of one listener.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub(crate) virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug)]
pub struct VirtualHost {
    pub name: String,
    pub routes: Vec<Route>,
}

/// One route: matchers (private to the router) and what to do with a match.
#[derive(Debug)]
pub struct Route {
    /// `virtual_host/index` or the route's configured name; used in stats and logs.
    pub name: String,
    pub action: Action,
    /// Whole-request timeout (until the response head... and body are complete); `None` disables.
    pub timeout: Option<Duration>,
    pub request_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names.
    pub request_headers_to_remove: Vec<Bytes>,
    pub response_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names.
    pub response_headers_to_remove: Vec<Bytes>,
    /// Replace the matched path prefix with this before forwarding (prefix routes only).
    pub prefix_rewrite: Option<Bytes>,
    pub(crate) matcher: matcher::RouteMatch,
}

#[derive(Debug, Clone)]
pub struct HeaderToAdd {
    /// Lowercase name.
    pub name: Bytes,
    pub value: Bytes,
    /// `true`: add beside existing fields of that name; `false`: replace them.
    pub append: bool,
}

#[derive(Debug)]
pub enum Action {
    Cluster(ClusterId),
    WeightedClusters(WeightedClusters),
    Redirect(Redirect),
    DirectResponse { status: u16, body: Bytes },
}

#[derive(Debug)]
pub struct WeightedClusters {
    /// `(cluster, cumulative weight)`, ascending.
    pub(crate) entries: Vec<(ClusterId, u32)>,
    pub(crate) total: u32,
}

#[derive(Debug)]
pub struct Redirect {
    /// `None` keeps the request's scheme.
    pub scheme: Option<Bytes>,
    /// `None` keeps the request's authority.
    pub host: Option<Bytes>,
    /// `None` keeps the request's path (and query unless `strip_query`).
    pub path: Option<Bytes>,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    pub strip_query: bool,
}

pub mod matcher;
