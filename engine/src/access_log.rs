//! Access log: one line per request (per connection on tcp listeners), in Envoy's default text
//! format or as JSON.
//!
//! Owns [`ResponseFlags`] (Envoy's short codes), the [`Entry`] a worker fills when a request
//! ends, the shared [`AccessLog`] sink (file opened `O_APPEND`, or stdout) and the per-worker
//! [`AccessLogWriter`] that formats into its own buffer with no lock and no per-entry
//! allocation, writing whole lines when the buffer passes 64 KiB and on [`AccessLogWriter::flush`].
//!
//! It does not decide what goes in an entry (the proxy does) nor rotate files (reopen on
//! SIGHUP is the caller's job: open a new [`AccessLog`]). Writes are blocking `write(2)` calls
//! of whole lines on the worker thread, about once a second or per 64 KiB.
//! DESIGN.md "observability"; Envoy's access log format and response flags.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{AccessLogConfig, AccessLogFormat};

/// Buffered bytes past which a writer writes out.
const FLUSH_AT: usize = 64 * 1024;

/// Envoy's response flags: why a request ended the way it did. A small bit set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// UH: no healthy upstream endpoint.
    pub const UH: Self = Self(1 << 0);
    /// UF: upstream connection failure.
    pub const UF: Self = Self(1 << 1);
    /// UO: upstream overflow (connection pool / circuit breaker limit).
    pub const UO: Self = Self(1 << 2);
    /// NR: no route configured for the request.
    pub const NR: Self = Self(1 << 3);
    /// URX: retry limit reached.
    pub const URX: Self = Self(1 << 4);
    /// UT: upstream request timeout.
    pub const UT: Self = Self(1 << 5);
    /// UC: upstream connection termination.
    pub const UC: Self = Self(1 << 6);
    /// DC: downstream connection termination.
    pub const DC: Self = Self(1 << 7);
    /// UPE: upstream protocol error.
    pub const UPE: Self = Self(1 << 8);
    /// DPE: downstream protocol error.
    pub const DPE: Self = Self(1 << 9);
    /// RL: rate limited locally.
    pub const RL: Self = Self(1 << 10);
    /// LR: connection local reset.
    pub const LR: Self = Self(1 << 11);
    /// SI: stream idle timeout.
    pub const SI: Self = Self(1 << 12);
    /// DT: downstream request timeout (request head or body took too long).
    pub const DT: Self = Self(1 << 13);
    /// DI: the request was delayed by the fault filter.
    pub const DI: Self = Self(1 << 14);
    /// FI: the request was aborted by the fault filter.
    pub const FI: Self = Self(1 << 15);
    /// RLSE: refused because the rate limit service did not answer (`failure_mode_deny`).
    pub const RLSE: Self = Self(1 << 16);

    /// Short codes in Envoy's (alphabetical) output order.
    const CODES: [(Self, &'static str); 17] = [
        (Self::DC, "DC"),
        (Self::DI, "DI"),
        (Self::DPE, "DPE"),
        (Self::DT, "DT"),
        (Self::FI, "FI"),
        (Self::LR, "LR"),
        (Self::NR, "NR"),
        (Self::RL, "RL"),
        (Self::RLSE, "RLSE"),
        (Self::SI, "SI"),
        (Self::UC, "UC"),
        (Self::UF, "UF"),
        (Self::UH, "UH"),
        (Self::UO, "UO"),
        (Self::UPE, "UPE"),
        (Self::URX, "URX"),
        (Self::UT, "UT"),
    ];

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for ResponseFlags {
    /// `-` when empty, else comma-joined short codes (`UF,URX`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, code) in Self::CODES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(code)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({self})")
    }
}

/// Everything logged about one request; borrowed from the request and response heads.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// When the first byte of the request arrived.
    pub start: SystemTime,
    /// Request method.
    pub method: &'a [u8],
    /// Request target as received (path and query).
    pub path: &'a [u8],
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub protocol: &'static str,
    /// Response status sent (0 when none was).
    pub status: u16,
    /// Why the request ended as it did.
    pub flags: ResponseFlags,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// First request byte to last response byte.
    pub duration: Duration,
    /// Request sent upstream to response head received; `None` without an upstream.
    pub upstream_service_time: Option<Duration>,
    /// `x-forwarded-for` as received.
    pub forwarded_for: Option<&'a [u8]>,
    /// `user-agent`.
    pub user_agent: Option<&'a [u8]>,
    /// `x-request-id` (received or generated).
    pub request_id: Option<&'a [u8]>,
    /// `host` / `:authority`.
    pub authority: &'a [u8],
    /// The endpoint the request went to.
    pub upstream_host: Option<SocketAddr>,
    /// The client's address (after PROXY protocol, if any).
    pub downstream_remote: SocketAddr,
    /// The route that matched; empty when none did.
    pub route_name: &'a str,
    /// The TLS server name (SNI) the client asked for (Envoy's `%REQUESTED_SERVER_NAME%`).
    pub requested_server_name: Option<&'a [u8]>,
    /// Tries made upstream, retries included (Envoy's `%UPSTREAM_REQUEST_ATTEMPT_COUNT%`);
    /// 0 when the request went to no upstream.
    pub upstream_request_attempt_count: u32,
}

enum Sink {
    Stdout,
    File(File),
}

/// One access log (per listener): the sink and the format. Shared by the workers, each
/// writing through its own [`AccessLogWriter`].
pub struct AccessLog {
    sink: Sink,
    format: AccessLogFormat,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sink = match &self.sink {
            Sink::Stdout => "stdout",
            Sink::File(_) => "file",
        };
        f.debug_struct("AccessLog")
            .field("sink", &sink)
            .field("format", &self.format)
            .finish()
    }
}

impl AccessLog {
    /// Opens the configured file for appending (created with mode 0644 if missing), or
    /// standard output when no path is set.
    pub fn open(cfg: &AccessLogConfig) -> io::Result<Arc<Self>> {
        let sink = match &cfg.path {
            None => Sink::Stdout,
            Some(p) => Sink::File(File::options().append(true).create(true).open(p)?),
        };
        Ok(Arc::new(Self {
            sink,
            format: cfg.format,
        }))
    }

    /// A per-worker buffered writer.
    pub fn writer(self: &Arc<Self>) -> AccessLogWriter {
        AccessLogWriter {
            log: Arc::clone(self),
            buf: RefCell::new(Vec::with_capacity(FLUSH_AT)),
        }
    }

    /// Writes whole lines. With `O_APPEND` each `write(2)` lands at the end of the file.
    fn write_out(&self, bytes: &[u8]) -> io::Result<()> {
        match &self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File(f) => {
                let mut f: &File = f;
                f.write_all(bytes)
            }
        }
    }
}

/// One worker's access log writer: formats into its own buffer (not `Sync`, no lock).
/// Dropping it flushes.
#[derive(Debug)]
pub struct AccessLogWriter {
    log: Arc<AccessLog>,
    buf: RefCell<Vec<u8>>,
}

impl AccessLogWriter {
    /// Formats one line; writes the buffer out once it passes 64 KiB.
    pub fn log(&self, e: &Entry<'_>) {
        let mut buf = self.buf.borrow_mut();
        match self.log.format {
            AccessLogFormat::Default => format_default(&mut buf, e),
            AccessLogFormat::Json => format_json(&mut buf, e),
        }
        if buf.len() >= FLUSH_AT {
            self.write_buf(&mut buf);
        }
    }

    /// Writes out whatever is buffered (the worker calls this about once a second and at exit).
    pub fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if !buf.is_empty() {
            self.write_buf(&mut buf);
        }
    }

    fn write_buf(&self, buf: &mut Vec<u8>) {
        if let Err(e) = self.log.write_out(buf) {
            log::warn!("access log write failed, {} bytes dropped: {e}", buf.len());
        }
        buf.clear();
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Envoy's default format:
/// `[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
/// %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
/// "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
/// "%UPSTREAM_HOST%"`. Request bytes are escaped (`\"`, `\\`, `\xHH` for control and
/// non-ASCII bytes) so a line cannot be forged or broken.
pub fn format_default(buf: &mut Vec<u8>, e: &Entry<'_>) {
    buf.push(b'[');
    write_rfc3339(buf, e.start);
    buf.extend_from_slice(b"] \"");
    text_bytes(buf, e.method);
    buf.push(b' ');
    text_bytes(buf, e.path);
    buf.push(b' ');
    buf.extend_from_slice(e.protocol.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(
        buf,
        "\" {} {} {} {} {} ",
        e.status,
        e.flags,
        e.bytes_received,
        e.bytes_sent,
        e.duration.as_millis()
    );
    match e.upstream_service_time {
        Some(d) => {
            let _ = write!(buf, "{}", d.as_millis());
        }
        None => buf.push(b'-'),
    }
    for v in [
        e.forwarded_for,
        e.user_agent,
        e.request_id,
        Some(e.authority),
    ] {
        buf.extend_from_slice(b" \"");
        match v {
            Some(v) if !v.is_empty() => text_bytes(buf, v),
            _ => buf.push(b'-'),
        }
        buf.push(b'"');
    }
    buf.extend_from_slice(b" \"");
    match e.upstream_host {
        Some(a) => {
            let _ = write!(buf, "{a}");
        }
        None => buf.push(b'-'),
    }
    buf.extend_from_slice(b"\"\n");
}

/// One JSON object per line; absent values are `null`, durations in milliseconds.
pub fn format_json(buf: &mut Vec<u8>, e: &Entry<'_>) {
    buf.extend_from_slice(b"{\"start_time\":\"");
    write_rfc3339(buf, e.start);
    buf.extend_from_slice(b"\",\"method\":");
    json_str(buf, e.method);
    buf.extend_from_slice(b",\"path\":");
    json_str(buf, e.path);
    buf.extend_from_slice(b",\"protocol\":");
    json_str(buf, e.protocol.as_bytes());
    let _ = write!(
        buf,
        ",\"response_code\":{},\"response_flags\":\"{}\",\"bytes_received\":{},\"bytes_sent\":{},\"duration_ms\":{},\"upstream_service_time_ms\":",
        e.status,
        e.flags,
        e.bytes_received,
        e.bytes_sent,
        e.duration.as_millis()
    );
    match e.upstream_service_time {
        Some(d) => {
            let _ = write!(buf, "{}", d.as_millis());
        }
        None => buf.extend_from_slice(b"null"),
    }
    for (key, v) in [
        ("x_forwarded_for", e.forwarded_for),
        ("user_agent", e.user_agent),
        ("request_id", e.request_id),
        ("authority", Some(e.authority)),
    ] {
        let _ = write!(buf, ",\"{key}\":");
        match v {
            Some(v) => json_str(buf, v),
            None => buf.extend_from_slice(b"null"),
        }
    }
    buf.extend_from_slice(b",\"upstream_host\":");
    match e.upstream_host {
        Some(a) => {
            let _ = write!(buf, "\"{a}\"");
        }
        None => buf.extend_from_slice(b"null"),
    }
    let _ = write!(
        buf,
        ",\"downstream_remote_address\":\"{}\",\"route_name\":",
        e.downstream_remote
    );
    json_str(buf, e.route_name.as_bytes());
    buf.extend_from_slice(b",\"requested_server_name\":");
    match e.requested_server_name {
        Some(v) => json_str(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
    let _ = writeln!(
        buf,
        ",\"upstream_request_attempt_count\":{}}}",
        e.upstream_request_attempt_count
    );
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Copies bytes for the text format, escaping `"`, `\`, control and non-ASCII bytes.
fn text_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    for &b in v {
        match b {
            b'"' | b'\\' => buf.extend_from_slice(&[b'\\', b]),
            0x20..=0x7e => buf.push(b),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
}

/// A JSON string: valid UTF-8 is kept (escaping quotes, backslashes and control characters);
/// invalid bytes become U+FFFD.
fn json_str(buf: &mut Vec<u8>, v: &[u8]) {
    buf.push(b'"');
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(buf, "\\u{:04x}", u32::from(c));
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice(b"\\ufffd");
        }
    }
    buf.push(b'"');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds). Times before 1970 print as the epoch.
pub fn write_rfc3339(buf: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    // Both are in range by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    fn time(t: SystemTime) -> String {
        let mut b = Vec::new();
        write_rfc3339(&mut b, t);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn rfc3339_matches_known_timestamps() {
        assert_eq!(time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(at(951_782_400, 0)), "2000-02-29T00:00:00.000Z"); // leap day, div-400 year
        assert_eq!(time(at(1_234_567_890, 123)), "2009-02-13T23:31:30.123Z");
        assert_eq!(time(at(1_709_251_199, 999)), "2024-02-29T23:59:59.999Z");
        assert_eq!(time(at(1_798_761_600, 0)), "2027-01-01T00:00:00.000Z");
        assert_eq!(time(at(4_107_542_400, 7)), "2100-03-01T00:00:00.007Z"); // 2100 is not leap
        assert_eq!(time(at(1_795_615_200, 0)), "2026-11-25T14:00:00.000Z");
        assert_eq!(
            time(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn civil_from_days_round_trips_every_day_for_centuries() {
        // Independent days_from_civil, then compare day by day.
        fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y.rem_euclid(400);
            let m = i64::from(m);
            let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        let mut prev = civil_from_days(-1);
        for z in 0..200_000 {
            let c = civil_from_days(z);
            assert_eq!(days_from_civil(c.0, c.1, c.2), z);
            assert!(c > prev);
            prev = c;
        }
    }

    #[test]
    fn flags_render_like_envoy() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::default().to_string(), "-");
        assert_eq!(
            (ResponseFlags::URX | ResponseFlags::UF).to_string(),
            "UF,URX"
        );
        let mut f = ResponseFlags::NR;
        f |= ResponseFlags::DC;
        f.insert(ResponseFlags::UPE);
        assert_eq!(f.to_string(), "DC,NR,UPE");
        assert!(f.contains(ResponseFlags::NR) && !f.contains(ResponseFlags::UT));
        let all = ResponseFlags::CODES
            .iter()
            .fold(ResponseFlags::NONE, |a, (f, _)| a | *f);
        assert_eq!(
            all.to_string(),
            "DC,DI,DPE,DT,FI,LR,NR,RL,RLSE,SI,UC,UF,UH,UO,UPE,URX,UT"
        );
        assert_eq!(all.bits().count_ones(), 17);
    }

    fn entry() -> Entry<'static> {
        Entry {
            start: at(1_795_615_200, 0),
            method: b"GET",
            path: b"/path",
            protocol: "HTTP/1.1",
            status: 200,
            flags: ResponseFlags::NONE,
            bytes_received: 0,
            bytes_sent: 12,
            duration: Duration::from_micros(3_900),
            upstream_service_time: Some(Duration::from_millis(2)),
            forwarded_for: Some(b"xff"),
            user_agent: Some(b"curl/8"),
            request_id: Some(b"req-id"),
            authority: b"host",
            upstream_host: Some("127.0.0.1:8081".parse().unwrap()),
            downstream_remote: "10.0.0.1:5555".parse().unwrap(),
            route_name: "r1",
            requested_server_name: Some(b"api.example"),
            upstream_request_attempt_count: 2,
        }
    }

    fn default_line(e: &Entry<'_>) -> String {
        let mut b = Vec::new();
        format_default(&mut b, e);
        String::from_utf8(b).unwrap()
    }

    fn json_line(e: &Entry<'_>) -> serde_json::Value {
        let mut b = Vec::new();
        format_json(&mut b, e);
        assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
        assert_eq!(b.last(), Some(&b'\n'));
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn default_format_is_envoys() {
        assert_eq!(
            default_line(&entry()),
            "[2026-11-25T14:00:00.000Z] \"GET /path HTTP/1.1\" 200 - 0 12 3 2 \"xff\" \"curl/8\" \"req-id\" \"host\" \"127.0.0.1:8081\"\n"
        );
        let e = Entry {
            status: 503,
            flags: ResponseFlags::UF | ResponseFlags::URX,
            upstream_service_time: None,
            forwarded_for: None,
            user_agent: None,
            request_id: None,
            upstream_host: None,
            ..entry()
        };
        assert_eq!(
            default_line(&e),
            "[2026-11-25T14:00:00.000Z] \"GET /path HTTP/1.1\" 503 UF,URX 0 12 3 - \"-\" \"-\" \"-\" \"host\" \"-\"\n"
        );
    }

    #[test]
    fn default_format_escapes_hostile_bytes() {
        let e = Entry {
            path: b"/a\"b\\c\n\xff",
            user_agent: Some(b"x\" \"y"),
            ..entry()
        };
        let l = default_line(&e);
        assert!(l.contains(r#""GET /a\"b\\c\x0a\xff HTTP/1.1""#), "{l}");
        assert!(l.contains(r#""x\" \"y""#), "{l}");
        assert_eq!(l.matches('\n').count(), 1);
    }

    #[test]
    fn json_format_has_every_key_and_escapes() {
        let v = json_line(&entry());
        assert_eq!(v["start_time"], "2026-11-25T14:00:00.000Z");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/path");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["response_code"], 200);
        assert_eq!(v["response_flags"], "-");
        assert_eq!(v["bytes_received"], 0);
        assert_eq!(v["bytes_sent"], 12);
        assert_eq!(v["duration_ms"], 3);
        assert_eq!(v["upstream_service_time_ms"], 2);
        assert_eq!(v["x_forwarded_for"], "xff");
        assert_eq!(v["user_agent"], "curl/8");
        assert_eq!(v["request_id"], "req-id");
        assert_eq!(v["authority"], "host");
        assert_eq!(v["upstream_host"], "127.0.0.1:8081");
        assert_eq!(v["downstream_remote_address"], "10.0.0.1:5555");
        assert_eq!(v["route_name"], "r1");
        assert_eq!(v["requested_server_name"], "api.example");
        assert_eq!(v["upstream_request_attempt_count"], 2);
        assert_eq!(v.as_object().unwrap().len(), 19);

        let e = Entry {
            path: b"/\"q\"\\\x01\t\xc3\xa9\xff\xfe",
            flags: ResponseFlags::UT,
            upstream_service_time: None,
            user_agent: None,
            upstream_host: None,
            route_name: "",
            requested_server_name: None,
            upstream_request_attempt_count: 0,
            ..entry()
        };
        let v = json_line(&e);
        assert_eq!(v["path"], "/\"q\"\\\u{1}\t\u{e9}\u{fffd}\u{fffd}");
        assert_eq!(v["response_flags"], "UT");
        assert!(v["upstream_service_time_ms"].is_null());
        assert!(v["user_agent"].is_null());
        assert!(v["upstream_host"].is_null());
        assert_eq!(v["route_name"], "");
        assert!(v["requested_server_name"].is_null());
    }

    fn temp_path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ringway-access-{tag}-{}.log", std::process::id()))
    }

    #[test]
    fn writer_buffers_until_flush_and_appends() {
        let path = temp_path("flush");
        std::fs::write(&path, b"existing\n").unwrap();
        let cfg = AccessLogConfig {
            path: Some(path.clone()),
            format: AccessLogFormat::Default,
        };
        let log = AccessLog::open(&cfg).unwrap();
        let w = log.writer();
        w.log(&entry());
        w.log(&entry());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"existing\n",
            "buffered until flush"
        );
        w.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with("existing\n[2026-11-25T14:00:00.000Z] \"GET"));
        // A second writer (another worker) appends whole lines too; drop flushes.
        let w2 = log.writer();
        w2.log(&entry());
        drop(w2);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn writer_writes_out_past_64_kib_in_whole_lines() {
        let path = temp_path("big");
        let _ = std::fs::remove_file(&path);
        let cfg = AccessLogConfig {
            path: Some(path.clone()),
            format: AccessLogFormat::Json,
        };
        let w = AccessLog::open(&cfg).unwrap().writer();
        let mut n = 0;
        while std::fs::metadata(&path).unwrap().len() == 0 {
            w.log(&entry());
            n += 1;
            assert!(n < 10_000, "never wrote out");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() >= FLUSH_AT);
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), n);
        for l in text.lines() {
            let _: serde_json::Value = serde_json::from_str(l).unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn open_fails_for_a_missing_directory() {
        let cfg = AccessLogConfig {
            path: Some("/nonexistent-ringway-dir/x.log".into()),
            format: AccessLogFormat::Default,
        };
        assert!(AccessLog::open(&cfg).is_err());
    }
}
