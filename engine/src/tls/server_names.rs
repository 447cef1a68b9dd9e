//! Matching a TLS server name (SNI) against configured names: exact names and `*.suffix`
//! wildcards, the one matcher behind certificate selection ([`super::server`]) and SNI routing
//! on tcp listeners ([`crate::tcp`]).
//!
//! Rules (Envoy's `server_names` in a filter chain match): comparison ignores ASCII case and a
//! trailing dot; an exact name beats any wildcard; among wildcards the longest matching suffix
//! wins, so `*.b.example` beats `*.example` for `a.b.example`; a wildcard matches any number of
//! labels in place of its `*` (`*.example` matches `a.example` and `a.b.example`) but never the
//! bare suffix (`example`). Names are checked when configured ([`super::check_server_name`]);
//! a lookup never allocates for names up to 255 bytes.

use std::collections::HashMap;

/// Longest name looked up without allocating (RFC 1035 names are at most 253 bytes).
const INLINE: usize = 255;

/// Server names (stored lowercase; wildcards without their `*.`) and what each maps to.
#[derive(Debug, Clone)]
pub struct ServerNames<T> {
    exact: HashMap<String, T>,
    wildcard: HashMap<String, T>,
}

impl<T> Default for ServerNames<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<T> ServerNames<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no name is configured.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// True if exactly `name` (`a.example` or `*.example`, any case) is configured.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(suffix) => self.wildcard.contains_key(suffix),
            None => self.exact.contains_key(&name),
        }
    }

    /// Adds `name` (`a.example` or `*.example`, any case); returns the value it replaces.
    pub fn insert(&mut self, name: &str, value: T) -> Option<T> {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(suffix) => self.wildcard.insert(suffix.to_owned(), value),
            None => self.exact.insert(name, value),
        }
    }

    /// The value for a client's server name: exact, then the longest matching `*.suffix`.
    pub fn get(&self, name: &str) -> Option<&T> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut inline = [0u8; INLINE];
        let heap;
        let lower: &str = if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            name
        } else if let Some(buf) = inline.get_mut(..name.len()) {
            buf.copy_from_slice(name.as_bytes());
            buf.make_ascii_lowercase();
            // Lowercasing ASCII letters keeps UTF-8 valid.
            std::str::from_utf8(buf).unwrap_or_default()
        } else {
            heap = name.to_ascii_lowercase();
            &heap
        };
        if let Some(v) = self.exact.get(lower) {
            return Some(v);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut rest = lower;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(v) = self.wildcard.get(parent) {
                return Some(v);
            }
            rest = parent;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServerNames<u8> {
        let mut n = ServerNames::new();
        assert!(n.is_empty());
        n.insert("api.example.com", 1);
        n.insert("*.example.com", 2);
        n.insert("*.Internal.Example.com", 3);
        n.insert("internal.example.com", 4);
        assert!(!n.is_empty());
        n
    }

    #[test]
    fn exact_beats_wildcard_and_the_longest_suffix_wins() {
        let n = names();
        assert_eq!(n.get("api.example.com"), Some(&1));
        assert_eq!(n.get("www.example.com"), Some(&2));
        assert_eq!(n.get("a.b.example.com"), Some(&2));
        assert_eq!(n.get("db.internal.example.com"), Some(&3));
        assert_eq!(n.get("x.db.internal.example.com"), Some(&3));
        assert_eq!(n.get("internal.example.com"), Some(&4));
        assert_eq!(
            n.get("example.com"),
            None,
            "a wildcard needs a label in place of *"
        );
        assert_eq!(n.get("example.org"), None);
        assert_eq!(n.get(""), None);
        assert_eq!(n.get("."), None);
    }

    #[test]
    fn case_and_a_trailing_dot_are_ignored() {
        let n = names();
        assert_eq!(n.get("API.Example.COM"), Some(&1));
        assert_eq!(n.get("api.example.com."), Some(&1));
        assert_eq!(n.get("WWW.EXAMPLE.COM."), Some(&2));
        assert!(n.contains("API.example.com"));
        assert!(n.contains("*.internal.example.com"));
        assert!(!n.contains("www.example.com"));
        let long = format!("{}.EXAMPLE.com", "A".repeat(300));
        assert_eq!(n.get(&long), Some(&2), "past the inline buffer");
    }

    #[test]
    fn insert_reports_a_replaced_name() {
        let mut n = names();
        assert_eq!(n.insert("API.example.com", 9), Some(1));
        assert_eq!(n.insert("*.EXAMPLE.com", 8), Some(2));
        assert_eq!(n.insert("new.example.com", 7), None);
    }
}
