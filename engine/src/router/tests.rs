//! Router tests: tables are compiled from real config text, then matched against requests.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::config::{Config, parse_str};

/// A request as the router sees it.
struct Req<'a> {
    authority: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Req<'a> {
    fn new(authority: &'a str, target: &'a str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            authority,
            path,
            query,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl RequestInfo for Req<'_> {
    fn authority(&self) -> &[u8] {
        self.authority.as_bytes()
    }
    fn path(&self) -> &[u8] {
        self.path.as_bytes()
    }
    fn query(&self) -> &[u8] {
        self.query.as_bytes()
    }
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }
    fn method(&self) -> &[u8] {
        b"GET"
    }
}

const CLUSTERS: &str = r#"
[[clusters]]
name = "a"
endpoints = ["127.0.0.1:1"]
[[clusters]]
name = "b"
endpoints = ["127.0.0.1:2"]
[[clusters]]
name = "c"
endpoints = ["127.0.0.1:3"]
"#;

/// A config with one listener whose vhosts are `vhosts` (TOML), plus clusters a, b, c.
fn config(vhosts: &str) -> Config {
    let text = format!(
        "[admin]\nenabled = false\n[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:8080\"\n{vhosts}\n{CLUSTERS}"
    );
    parse_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// One vhost `*` with the given routes.
fn routes(routes: &str) -> Config {
    config(&format!(
        "[[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n{routes}"
    ))
}

fn route_name<'c>(cfg: &'c Config, req: &Req<'_>) -> Option<&'c str> {
    cfg.listeners[0].routes.route(req).map(|r| r.name.as_str())
}

fn vhost_name<'c>(cfg: &'c Config, authority: &str) -> Option<&'c str> {
    cfg.listeners[0]
        .routes
        .virtual_host(authority.as_bytes())
        .map(|v| v.name.as_str())
}

#[test]
fn vhost_precedence_exact_then_longest_suffix_then_any() {
    let cfg = config(
        r#"
[[listeners.virtual_hosts]]
name = "any"
domains = ["*"]
[[listeners.virtual_hosts]]
name = "short"
domains = ["*.com"]
[[listeners.virtual_hosts]]
name = "long"
domains = ["*.example.com"]
[[listeners.virtual_hosts]]
name = "exact"
domains = ["api.example.com", "Mixed.Example.COM"]
[[listeners.virtual_hosts]]
name = "with_port"
domains = ["api.example.com:8443"]
"#,
    );
    assert_eq!(vhost_name(&cfg, "api.example.com"), Some("exact"));
    assert_eq!(vhost_name(&cfg, "API.EXAMPLE.COM:80"), Some("exact"));
    assert_eq!(vhost_name(&cfg, "mixed.example.com"), Some("exact"));
    assert_eq!(vhost_name(&cfg, "api.example.com:8443"), Some("with_port"));
    assert_eq!(vhost_name(&cfg, "www.example.com"), Some("long"));
    assert_eq!(vhost_name(&cfg, "a.b.example.com:1"), Some("long"));
    assert_eq!(vhost_name(&cfg, "other.com"), Some("short"));
    // `*` must cover at least one character.
    assert_eq!(vhost_name(&cfg, "example.com"), Some("short"));
    assert_eq!(vhost_name(&cfg, ".com"), Some("any"));
    assert_eq!(vhost_name(&cfg, "localhost"), Some("any"));
    assert_eq!(vhost_name(&cfg, ""), Some("any"));
    let long = format!("{}.example.com", "a".repeat(1000));
    assert_eq!(vhost_name(&cfg, &long), Some("long"));
    let long = "b".repeat(MAX_DOMAIN_LEN + 1);
    assert_eq!(vhost_name(&cfg, &long), Some("any"));
}

#[test]
fn no_matching_vhost_routes_nowhere() {
    let cfg = config(
        r#"
[[listeners.virtual_hosts]]
name = "only"
domains = ["only.example", "[::1]"]
  [[listeners.virtual_hosts.routes]]
  prefix = "/"
  cluster = "a"
"#,
    );
    assert_eq!(vhost_name(&cfg, "other.example"), None);
    assert!(
        cfg.listeners[0]
            .routes
            .route(&Req::new("other.example", "/"))
            .is_none()
    );
    assert_eq!(
        route_name(&cfg, &Req::new("only.example:8080", "/x")),
        Some("only/0")
    );
    assert_eq!(vhost_name(&cfg, "[::1]:8080"), Some("only"));
    assert_eq!(vhost_name(&cfg, "[::1]"), Some("only"));
}

#[test]
fn strip_port_handles_ipv6_and_oddities() {
    assert_eq!(strip_port(b"host:80"), b"host");
    assert_eq!(strip_port(b"host"), b"host");
    assert_eq!(strip_port(b"[::1]:443"), b"[::1]");
    assert_eq!(strip_port(b"[::1]"), b"[::1]");
    assert_eq!(strip_port(b"::1"), b"::1");
    assert_eq!(strip_port(b"host:"), b"host:");
    assert_eq!(strip_port(b"host:8x"), b"host:8x");
}

#[test]
fn first_matching_route_wins() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
name = "exact"
path = "/api"
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "api"
prefix = "/api/"
cluster = "b"
[[listeners.virtual_hosts.routes]]
name = "never"
prefix = "/api/v1"
cluster = "c"
[[listeners.virtual_hosts.routes]]
name = "rest"
prefix = "/"
cluster = "c"
"#,
    );
    assert_eq!(route_name(&cfg, &Req::new("h", "/api")), Some("exact"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/api/v1/x")), Some("api"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/apix")), Some("rest"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/API/v1")), Some("rest"));
}

#[test]
fn case_insensitive_prefix_path_and_regex() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
name = "p"
prefix = "/Docs/"
case_sensitive = false
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "e"
path = "/Login"
case_sensitive = false
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "r"
regex = "/item/[a-z]+"
case_sensitive = false
cluster = "a"
"#,
    );
    assert_eq!(route_name(&cfg, &Req::new("h", "/docs/x")), Some("p"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/DOCS/")), Some("p"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/LOGIN")), Some("e"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/login/")), None);
    assert_eq!(route_name(&cfg, &Req::new("h", "/ITEM/ABC")), Some("r"));
}

#[test]
fn regex_must_match_the_whole_path() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
name = "r"
regex = "/users/[0-9]+|/u"
cluster = "a"
"#,
    );
    assert_eq!(route_name(&cfg, &Req::new("h", "/users/42")), Some("r"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/u")), Some("r"));
    assert_eq!(route_name(&cfg, &Req::new("h", "/users/42/x")), None);
    assert_eq!(route_name(&cfg, &Req::new("h", "/x/users/42")), None);
    assert_eq!(route_name(&cfg, &Req::new("h", "/users/")), None);
    assert_eq!(route_name(&cfg, &Req::new("h", "/u2")), None);
}

#[test]
fn header_matchers() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
name = "exact"
prefix = "/e"
headers = [{ name = "X-Canary", exact = "1" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "prefix"
prefix = "/p"
headers = [{ name = "user-agent", prefix = "curl/" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "suffix"
prefix = "/s"
headers = [{ name = "host-ish", suffix = ".internal" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "regex"
prefix = "/r"
headers = [{ name = "x-v", regex = "v[0-9]" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "present"
prefix = "/present"
headers = [{ name = "authorization", present = true }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "absent"
prefix = "/absent"
headers = [{ name = "authorization", present = false }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "invert"
prefix = "/i"
headers = [{ name = "x-env", exact = "prod", invert = true }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "both"
prefix = "/b"
headers = [{ name = "x-a", exact = "1" }, { name = "x-b", exact = "2" }]
cluster = "a"
"#,
    );
    let r = |path: &'static str, h: &[(&'static str, &'static str)]| {
        let mut req = Req::new("h", path);
        for &(n, v) in h {
            req = req.header(n, v);
        }
        route_name(&cfg, &req).map(str::to_owned)
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(r("/e", &[("x-canary", "1")]), some("exact"));
    assert_eq!(r("/e", &[("x-canary", "10")]), None);
    assert_eq!(r("/e", &[]), None);
    // The first field with the name decides.
    assert_eq!(r("/e", &[("x-canary", "0"), ("x-canary", "1")]), None);
    assert_eq!(r("/p", &[("user-agent", "curl/8.0")]), some("prefix"));
    assert_eq!(r("/p", &[("user-agent", "Curl/8.0")]), None);
    assert_eq!(r("/s", &[("host-ish", "db.internal")]), some("suffix"));
    assert_eq!(r("/s", &[("host-ish", "db.internal.x")]), None);
    assert_eq!(r("/r", &[("x-v", "v2")]), some("regex"));
    assert_eq!(r("/r", &[("x-v", "v22")]), None);
    assert_eq!(r("/present", &[("authorization", "")]), some("present"));
    assert_eq!(r("/present", &[]), None);
    assert_eq!(r("/absent", &[]), some("absent"));
    assert_eq!(r("/absent", &[("authorization", "x")]), None);
    assert_eq!(r("/i", &[("x-env", "dev")]), some("invert"));
    assert_eq!(r("/i", &[("x-env", "prod")]), None);
    // An absent header never satisfies a value matcher, inverted or not.
    assert_eq!(r("/i", &[]), None);
    assert_eq!(r("/b", &[("x-a", "1"), ("x-b", "2")]), some("both"));
    assert_eq!(r("/b", &[("x-a", "1")]), None);
}

#[test]
fn query_matchers() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
name = "exact"
prefix = "/e"
query = [{ name = "debug", exact = "1" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "prefix"
prefix = "/p"
query = [{ name = "v", prefix = "2." }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "regex"
prefix = "/r"
query = [{ name = "id", regex = "[0-9]+" }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "present"
prefix = "/present"
query = [{ name = "flag", present = true }]
cluster = "a"
[[listeners.virtual_hosts.routes]]
name = "absent"
prefix = "/absent"
query = [{ name = "flag", present = false }]
cluster = "a"
"#,
    );
    let r = |target: &'static str| route_name(&cfg, &Req::new("h", target));
    assert_eq!(r("/e?debug=1"), Some("exact"));
    assert_eq!(r("/e?a=b&debug=1&c"), Some("exact"));
    assert_eq!(r("/e?debug=0&debug=1"), None);
    assert_eq!(r("/e?debug=10"), None);
    assert_eq!(r("/e?xdebug=1"), None);
    assert_eq!(r("/e"), None);
    // Not percent-decoded.
    assert_eq!(r("/e?debu%67=1"), None);
    assert_eq!(r("/p?v=2.1"), Some("prefix"));
    assert_eq!(r("/p?v=1.2"), None);
    assert_eq!(r("/r?id=123"), Some("regex"));
    assert_eq!(r("/r?id=12a"), None);
    assert_eq!(r("/present?flag"), Some("present"));
    assert_eq!(r("/present?x=1&flag="), Some("present"));
    assert_eq!(r("/present?flags=1"), None);
    assert_eq!(r("/absent?x=1"), Some("absent"));
    assert_eq!(r("/absent?flag=0"), None);
}

#[test]
fn query_param_parsing() {
    use super::matcher::query_param;
    assert_eq!(query_param(b"a=1&b=2", b"b"), Some(&b"2"[..]));
    assert_eq!(query_param(b"a&b=2", b"a"), Some(&b""[..]));
    assert_eq!(query_param(b"a==x", b"a"), Some(&b"=x"[..]));
    assert_eq!(query_param(b"", b"a"), None);
    assert_eq!(query_param(b"&&a=1&", b"a"), Some(&b"1"[..]));
}

#[test]
fn route_fields_are_compiled() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
prefix = "/api/"
cluster = "b"
timeout = "0s"
prefix_rewrite = "/v2/"
request_headers_to_add = [{ name = "X-Env", value = "prod" }]
request_headers_to_remove = ["X-Debug"]
response_headers_to_add = [{ name = "x-served-by", value = "ringway", append = false }]
response_headers_to_remove = ["Server"]
[[listeners.virtual_hosts.routes]]
prefix = "/"
direct_response = { status = 404, body = "nope" }
"#,
    );
    let table = &cfg.listeners[0].routes;
    let route = table.route(&Req::new("h", "/api/x")).unwrap();
    assert_eq!(route.name, "v/0");
    assert!(matches!(route.action, Action::Cluster(1)));
    assert_eq!(route.timeout, None);
    assert_eq!(route.request_headers_to_add[0].name, "x-env");
    assert!(route.request_headers_to_add[0].append);
    assert!(!route.response_headers_to_add[0].append);
    assert_eq!(
        route.request_headers_to_remove,
        vec![Bytes::from("x-debug")]
    );
    assert_eq!(
        route.response_headers_to_remove,
        vec![Bytes::from("server")]
    );
    let mut dst = Vec::new();
    assert!(route.rewrite_path(b"/api/users/1", &mut dst));
    assert_eq!(dst, b"/v2/users/1");

    let fallback = table.route(&Req::new("h", "/other")).unwrap();
    assert_eq!(fallback.name, "v/1");
    assert_eq!(fallback.timeout, Some(Duration::from_secs(15)));
    assert!(!fallback.rewrite_path(b"/other", &mut dst));
    match &fallback.action {
        Action::DirectResponse { status, body } => {
            assert_eq!((*status, body.as_ref()), (404, &b"nope"[..]));
        }
        other => panic!("unexpected action {other:?}"),
    }
}

#[test]
fn weighted_pick_follows_weights_exactly() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
prefix = "/"
weighted_clusters = [{ cluster = "c", weight = 90 }, { cluster = "a", weight = 10 }, { cluster = "b", weight = 1 }]
"#,
    );
    let route = cfg.listeners[0].routes.route(&Req::new("h", "/")).unwrap();
    let Action::WeightedClusters(wc) = &route.action else {
        panic!("expected weighted clusters")
    };
    let mut counts = [0u32; 3];
    for r in 0..101 {
        counts[wc.pick(r)] += 1;
    }
    // cluster ids: a = 0, b = 1, c = 2
    assert_eq!(counts, [10, 1, 90]);
    assert_eq!(wc.pick(0), 2);
    assert_eq!(wc.pick(89), 2);
    assert_eq!(wc.pick(90), 0);
    assert_eq!(wc.pick(99), 0);
    assert_eq!(wc.pick(100), 1);
    assert_eq!(wc.pick(101), 2);
    assert_eq!(wc.pick(u32::MAX), wc.pick(u32::MAX % 101));
    assert_eq!(
        wc.clusters().collect::<Vec<_>>(),
        vec![(2, 90), (0, 10), (1, 1)]
    );
}

#[test]
fn redirect_locations() {
    let cfg = routes(
        r#"
[[listeners.virtual_hosts.routes]]
prefix = "/https"
redirect = { scheme = "https" }
[[listeners.virtual_hosts.routes]]
prefix = "/moved"
redirect = { path = "/new", status = 308 }
[[listeners.virtual_hosts.routes]]
prefix = "/all"
redirect = { scheme = "https", host = "example.com", path = "/x", strip_query = true }
[[listeners.virtual_hosts.routes]]
prefix = "/host"
redirect = { host = "other.example:8443" }
[[listeners.virtual_hosts.routes]]
prefix = "/q"
redirect = { path = "/new?a=b" }
"#,
    );
    let loc = |authority: &'static str, target: &'static str| {
        let req = Req::new(authority, target);
        let route = cfg.listeners[0].routes.route(&req).unwrap();
        let Action::Redirect(r) = &route.action else {
            panic!("expected a redirect")
        };
        let mut dst = Vec::new();
        r.location(&req, b"http", &mut dst);
        (r.status, String::from_utf8(dst).unwrap())
    };
    assert_eq!(
        loc("h.example:8080", "/https/a?x=1"),
        (301, "https://h.example:8080/https/a?x=1".into())
    );
    assert_eq!(
        loc("h.example", "/moved?x=1"),
        (308, "http://h.example/new?x=1".into())
    );
    assert_eq!(
        loc("h.example", "/all/deep?x=1"),
        (301, "https://example.com/x".into())
    );
    assert_eq!(
        loc("h.example", "/host/p"),
        (301, "http://other.example:8443/host/p".into())
    );
    assert_eq!(
        loc("h.example", "/q?x=1"),
        (301, "http://h.example/new?a=b".into())
    );
}

#[test]
fn hash_policy_takes_the_first_entry_with_a_value() {
    use std::net::IpAddr;

    use crate::config::lb_table::hash_key;

    let cfg = routes(
        r#"[[listeners.virtual_hosts.routes]]
prefix = "/"
cluster = "a"
hash_policy = [{ header = "x-user" }, { query_parameter = "u" }, { cookie = { name = "sid" } }, { source_ip = true }]
[[listeners.virtual_hosts.routes]]
prefix = "/"
cluster = "b"
"#,
    );
    let route = &cfg.listeners[0].routes.virtual_hosts()[0].routes[0];
    let client = IpAddr::from([10, 1, 2, 3]);
    let never = || -> u64 { panic!("no cookie to make up") };
    let hash = |req: &Req<'_>| route.request_hash(req, client, never).hash;
    let both = Req::new("h", "/?u=7").header("x-user", "alice");
    assert_eq!(
        hash(&both),
        Some(hash_key(b"alice")),
        "the header comes first"
    );
    assert_eq!(hash(&Req::new("h", "/?a=1&u=7")), Some(hash_key(b"7")));
    let cookie = Req::new("h", "/").header("cookie", "a=1; sid=\"s1\"");
    assert_eq!(hash(&cookie), Some(hash_key(b"s1")));
    assert_eq!(
        hash(&Req::new("h", "/")),
        Some(hash_key(&[10, 1, 2, 3])),
        "a cookie entry without ttl makes none up"
    );
    let other = &cfg.listeners[0].routes.virtual_hosts()[0].routes[1];
    assert_eq!(
        other.request_hash(&Req::new("h", "/"), client, never),
        RequestHash::default(),
        "no policy, no hash"
    );

    // With a ttl, a missing cookie is made up, hashed and set.
    let cfg = routes(
        r#"[[listeners.virtual_hosts.routes]]
prefix = "/"
cluster = "a"
hash_policy = [{ cookie = { name = "sid", ttl = "90s" } }]
"#,
    );
    let route = &cfg.listeners[0].routes.virtual_hosts()[0].routes[0];
    let made = route.request_hash(&Req::new("h", "/"), client, || 0xabc);
    let set = made.set_cookie.expect("a cookie to set");
    let mut field = Vec::new();
    set.write(&mut field);
    assert_eq!(field, b"sid=0000000000000abc; Max-Age=90; HttpOnly");
    assert_eq!(made.hash, Some(hash_key(b"0000000000000abc")));
    let back = Req::new("h", "/").header("cookie", "sid=0000000000000abc");
    let again = route.request_hash(&back, client, never);
    assert_eq!((again.hash, again.set_cookie), (made.hash, None));
}
