//! Responses ringway generates itself: errors, direct responses, redirects.

use bytes::BytesMut;
use protocols::http1::encode;

use crate::config::HttpOptions;
use crate::filters::Edits;

/// A locally generated response.
pub(crate) struct LocalReply<'a> {
    pub(crate) status: u16,
    pub(crate) body: &'a [u8],
    pub(crate) content_type: &'a [u8],
    pub(crate) location: Option<&'a [u8]>,
    /// The route's and the filters' header changes (`content-length` is never dropped).
    pub(crate) edits: Edits<'a>,
    /// No body on the wire (HEAD request), but `content-length` still says how long it would be.
    pub(crate) head_only: bool,
    pub(crate) close: bool,
    pub(crate) keep_alive_10: bool,
}

impl<'a> LocalReply<'a> {
    pub(crate) fn new(status: u16, body: &'a [u8]) -> Self {
        Self {
            status,
            body,
            content_type: b"text/plain",
            location: None,
            edits: Edits::NONE,
            head_only: false,
            close: false,
            keep_alive_10: false,
        }
    }

    /// Serialise into `dst`; returns the number of body bytes written.
    pub(crate) fn write(&self, dst: &mut BytesMut, opts: &HttpOptions) -> usize {
        encode::status_line(dst, self.status, b"");
        if !self.edits.drops(b"server") {
            encode::header(dst, b"server", opts.server_name.as_bytes());
        }
        if let Some(loc) = self.location {
            encode::header(dst, b"location", loc);
        }
        let mut len = itoa::Buffer::new();
        encode::header(
            dst,
            b"content-length",
            len.format(self.body.len()).as_bytes(),
        );
        if !self.body.is_empty() && !self.edits.drops(b"content-type") {
            encode::header(dst, b"content-type", self.content_type);
        }
        if self.close {
            encode::header(dst, b"connection", b"close");
        } else if self.keep_alive_10 {
            encode::header(dst, b"connection", b"keep-alive");
        }
        self.edits
            .for_each_add(|name, value| encode::header(dst, name, value));
        encode::end_head(dst);
        if self.head_only {
            0
        } else {
            dst.extend_from_slice(self.body);
            self.body.len()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> HttpOptions {
        HttpOptions {
            request_header_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
            stream_idle_timeout: std::time::Duration::from_secs(1),
            request_timeout: None,
            max_stream_duration: None,
            max_request_line_bytes: 1,
            max_request_headers_bytes: 1,
            max_request_headers_count: 1,
            use_forwarded_headers: true,
            generate_request_id: true,
            via: None,
            server_name: "ringway".into(),
            https: false,
        }
    }

    #[test]
    fn error_reply_is_complete_http() {
        let mut b = BytesMut::new();
        let mut r = LocalReply::new(404, b"no route\n");
        r.close = true;
        let n = r.write(&mut b, &opts());
        assert_eq!(n, 9);
        let text = std::str::from_utf8(&b).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("content-length: 9\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nno route\n"));
    }

    #[test]
    fn head_reply_has_length_but_no_body() {
        let mut b = BytesMut::new();
        let mut r = LocalReply::new(200, b"hello");
        r.head_only = true;
        assert_eq!(r.write(&mut b, &opts()), 0);
        assert!(b.ends_with(b"content-length: 5\r\ncontent-type: text/plain\r\n\r\n"));
    }
}
