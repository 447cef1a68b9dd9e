//! Config errors: where (file:line:column and field path) and why a configuration was refused.
//!
//! Owns the error type and the conversion of byte offsets / field paths into line:column. It
//! does not decide what is invalid (that is `validate`) and is only used on the cold path of
//! loading a config, so it carries `String`s freely. DESIGN.md "Errors and bad input".

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Why a configuration was refused. Display:
/// `config.toml:12:5: clusters[1].endpoints[0]: invalid socket address "127.0.0.1" ...`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, does not fit the schema, or fails validation.
    #[error("{}", Located { origin, line: *line, column: *column, path, reason })]
    Invalid {
        /// File name (or `<embedded>`, `<admin>`, ...).
        origin: String,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column (in characters) of the offending value.
        column: usize,
        /// Field path such as `listeners[0].virtual_hosts[1].routes[2].cluster`; empty when
        /// the error is not inside any field (TOML syntax errors at top level).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

struct Located<'a> {
    origin: &'a str,
    line: usize,
    column: usize,
    path: &'a str,
    reason: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(self.reason)
    }
}

/// A validation failure before it is located in the text: the field path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `listeners[0].address`, `clusters[1].endpoints[0]`, ... (see [`ConfigError::Invalid`]).
    pub path: String,
    /// What is wrong with the value at `path`.
    pub reason: String,
}

impl FieldError {
    /// Builds an error for the value at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// One step of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into `Key(a) Key(b) Index(2) Key(c)`. Keys of our schema never contain
/// `.` or `[`.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

/// Byte span of the deepest value on `path` that exists in the document (the whole value
/// when the path resolves fully; the nearest enclosing table/array when a field is missing).
fn span_of_path(doc: &Spanned<DeTable<'_>>, path: &str) -> Range<usize> {
    let mut span = doc.span();
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    for segment in segments(path) {
        let next = match (segment, table, array) {
            (Segment::Key(key), Some(t), _) => t.get(key),
            (Segment::Index(i), _, Some(a)) => a.get(i),
            _ => None,
        };
        let Some(value) = next else { break };
        span = value.span();
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    span
}

/// Field path of the narrowest value (or key) whose span contains `offset`, for serde errors,
/// which carry only a span. Tables opened by a `[header]` have the header as their span, so
/// the whole tree is searched rather than pruned by containment.
fn path_at_offset(doc: &Spanned<DeTable<'_>>, offset: usize) -> String {
    fn visit(
        value: &DeValue<'_>,
        path: &mut String,
        offset: usize,
        best: &mut Option<(usize, String)>,
    ) {
        fn consider(
            span: Range<usize>,
            path: &str,
            offset: usize,
            best: &mut Option<(usize, String)>,
        ) {
            if span.contains(&offset) || (span.is_empty() && span.start == offset) {
                let len = span.len();
                // Ties go to the later (deeper) node: an array of tables and its first table
                // share the header span.
                if best.as_ref().is_none_or(|(l, _)| len <= *l) {
                    *best = Some((len, path.to_owned()));
                }
            }
        }
        let base = path.len();
        match value {
            DeValue::Table(t) => {
                for (key, v) in t.iter() {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key.get_ref());
                    consider(key.span(), path, offset, best);
                    consider(v.span(), path, offset, best);
                    visit(v.get_ref(), path, offset, best);
                    path.truncate(base);
                }
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    consider(v.span(), path, offset, best);
                    visit(v.get_ref(), path, offset, best);
                    path.truncate(base);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    let root = DeValue::Table(doc.get_ref().clone());
    visit(&root, &mut String::new(), offset, &mut best);
    best.map(|(_, p)| p).unwrap_or_default()
}

/// Locates a validation error in `text` by walking its field path.
pub(crate) fn locate_field(text: &str, origin: &str, err: FieldError) -> ConfigError {
    let offset = match DeTable::parse(text) {
        Ok(doc) => span_of_path(&doc, &err.path).start,
        Err(_) => 0,
    };
    let (line, column) = line_column(text, offset);
    ConfigError::Invalid {
        origin: origin.to_owned(),
        line,
        column,
        path: err.path,
        reason: err.reason,
    }
}

/// Locates a TOML syntax or schema (serde) error in `text` from its span.
pub(crate) fn locate_toml(text: &str, origin: &str, err: &toml::de::Error) -> ConfigError {
    let offset = err.span().map_or(0, |s| s.start);
    let path = match DeTable::parse(text) {
        Ok(doc) => path_at_offset(&doc, offset),
        Err(_) => String::new(),
    };
    let (line, column) = line_column(text, offset);
    ConfigError::Invalid {
        origin: origin.to_owned(),
        line,
        column,
        path,
        reason: err.message().trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_counts_chars() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes, one column.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn splits_paths() {
        use Segment::*;
        assert_eq!(
            segments("listeners[0].virtual_hosts[12].routes[3].cluster"),
            vec![
                Key("listeners"),
                Index(0),
                Key("virtual_hosts"),
                Index(12),
                Key("routes"),
                Index(3),
                Key("cluster"),
            ]
        );
        assert_eq!(segments("workers"), vec![Key("workers")]);
    }

    #[test]
    fn walks_paths_both_ways() {
        let text = "workers = 2\n[[clusters]]\nname = \"a\"\nendpoints = [\"x\", \"y\"]\n";
        let doc = DeTable::parse(text).unwrap();
        let span = span_of_path(&doc, "clusters[0].endpoints[1]");
        assert_eq!(&text[span.clone()], "\"y\"");
        assert_eq!(path_at_offset(&doc, span.start), "clusters[0].endpoints[1]");
        // Missing field: falls back to the enclosing table, whose span is its header.
        let span = span_of_path(&doc, "clusters[0].lb");
        assert_eq!(&text[span], "[[clusters]]");
        let key = text.find("endpoints").unwrap();
        assert_eq!(path_at_offset(&doc, key), "clusters[0].endpoints");
    }

    #[test]
    fn display_has_location_path_and_reason() {
        let err = ConfigError::Invalid {
            origin: "config.toml".into(),
            line: 12,
            column: 5,
            path: "clusters[1].endpoints[0]".into(),
            reason: "invalid socket address \"127.0.0.1\"".into(),
        };
        assert_eq!(
            err.to_string(),
            "config.toml:12:5: clusters[1].endpoints[0]: invalid socket address \"127.0.0.1\""
        );
    }
}
