//! The real `ringway` binary end to end: `--check` errors with file:line:column, quick mode,
//! the embedded default config, SIGTERM drain, SIGHUP reload, listener timeouts and the
//! per-worker connection limit; plus WebSocket upgrades tunnelled through the proxy (8 MiB each
//! way with a half-close, the listener's idle timeout, an upstream reset).
//!
//! Every child process is killed by a drop guard, every config is a unique temp file removed
//! on drop, every wait is bounded in count and time. Under `RINGWAY_TEST_DRIVER=legacy` the
//! binary is told to use the epoll driver (`RINGWAY_IO_DRIVER`). DESIGN.md "lifecycle",
//! "dynamic configuration"; docs/config.md.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{Backend, Proxy, full, raw_get};

/// Longest wait for anything that should happen "soon" (start-up, a signal taking effect).
const PATIENCE: Duration = Duration::from_secs(20);
/// Poll interval of bounded waits.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Harness: temp config files and the child process guard.

/// A config file under the temp dir with a unique name; removed on drop.
struct TempConfig {
    path: PathBuf,
}

impl TempConfig {
    fn new(tag: &str, text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "ringway-cli-lifecycle-{}-{n}-{tag}.toml",
            std::process::id()
        ));
        let cfg = Self { path };
        cfg.write(text);
        cfg
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).expect("write temp config");
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// The path as the binary prints it in errors (`path.display()`).
    fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the binary printed at start-up.
struct Started {
    listeners: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
}

impl Started {
    fn listener(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.listeners))
    }

    fn admin(&self) -> SocketAddr {
        self.admin.expect("admin enabled")
    }
}

/// A running `ringway` child with piped output; killed and reaped on drop.
struct Ringway {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Ringway {
    fn spawn(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway"));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RINGWAY_LOG", "info");
        match std::env::var("RINGWAY_TEST_DRIVER").as_deref() {
            Ok("legacy") => cmd.env("RINGWAY_IO_DRIVER", "legacy"),
            Ok("io_uring") => cmd.env("RINGWAY_IO_DRIVER", "io_uring"),
            _ => cmd.env_remove("RINGWAY_IO_DRIVER"),
        };
        let mut child = cmd.spawn().expect("spawn ringway");
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// Start with a config file.
    fn with_config(cfg: &TempConfig) -> Self {
        Self::spawn(&["-c", cfg.path().to_str().expect("utf-8 temp path")])
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits")
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own live child
        // (it is reaped only in `wait_exit` or on drop, so the pid cannot have been reused).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Read stdout until the start-up banner is complete; the listener and admin addresses.
    fn started(&mut self) -> Started {
        let deadline = Instant::now() + PATIENCE;
        let mut listeners = Vec::new();
        let mut admin = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "ringway did not finish starting ({e:?}); stdout: {:?}; stderr: {}",
                    self.stdout,
                    self.stderr()
                ),
            };
            self.stdout.push(line.clone());
            if let Some(rest) = line.strip_prefix("ringway: listener ") {
                let (name, url) = rest.split_once(" on ").expect("listener line");
                let addr = url.strip_prefix("http://").expect("http url");
                listeners.push((name.to_owned(), addr.parse().expect("listener address")));
            } else if let Some(url) = line.strip_prefix("ringway: admin on ") {
                let addr = url.strip_prefix("http://").expect("http url");
                admin = Some(addr.parse().expect("admin address"));
            } else if line.contains("worker(s)") {
                return Started { listeners, admin };
            }
        }
    }

    /// Wait (bounded) for the process to exit; then every byte of its output has been read.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "ringway still running after {limit:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(POLL);
        };
        // The pipes hit end of file once the process is gone: the readers finish.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        status
    }
}

impl Drop for Ringway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Run `ringway <args>` to completion: (exit status, stdout, stderr).
fn run_to_end(args: &[&str]) -> (ExitStatus, String, String) {
    let mut rw = Ringway::spawn(args);
    let status = rw.wait_exit(PATIENCE);
    (status, rw.stdout.join("\n"), rw.stderr())
}

/// `ringway --check -c <file>` on `text`: (exit status, stderr, the file's path as printed).
fn check(text: &str) -> (ExitStatus, String, String) {
    let cfg = TempConfig::new("check", text);
    let (status, _, stderr) = run_to_end(&["--check", "-c", cfg.path().to_str().unwrap()]);
    (status, stderr, cfg.shown())
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// Poll (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(POLL);
    }
}

/// One stat from the admin `/stats` text (0 when absent).
fn stat(admin: SocketAddr, name: &str) -> i64 {
    let (status, body) = raw_get(admin, "/stats");
    assert_eq!(status, 200, "/stats: {body}");
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .map(|v| v.trim().parse().expect("numeric stat"))
        .unwrap_or(0)
}

/// Read one response head (through the blank line); the rest read so far stays in `buf`.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            return head;
        }
        let n = s.read(&mut chunk).expect("read response head");
        assert!(
            n > 0,
            "closed before a complete head: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Read exactly `n` bytes after what is already in `buf`.
fn read_exact_more(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Vec<u8> {
    let mut chunk = [0u8; 4096];
    while buf.len() < n {
        let got = s.read(&mut chunk).expect("read");
        assert!(got > 0, "closed after {} of {n} bytes", buf.len());
        buf.extend_from_slice(&chunk[..got]);
    }
    buf.drain(..n).collect()
}

/// The value of header `name` (case-insensitive) in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A keep-alive GET and its complete content-length response: (head, body). The connection
/// stays usable.
fn get_keep_alive(s: &mut TcpStream, path: &str) -> (String, Vec<u8>) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .expect("write request");
    let mut buf = Vec::new();
    let head = read_head(s, &mut buf);
    let len: usize = header(&head, "content-length")
        .expect("content-length")
        .parse()
        .expect("numeric content-length");
    let body = read_exact_more(s, &mut buf, len);
    assert!(buf.is_empty(), "bytes after the response: {buf:?}");
    (head, body)
}

/// Whether the peer closed: `read` returns 0 (or a reset) within `limit`. Panics when data
/// arrives instead.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 256];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("read: {e}"),
    }
}

/// One listener `main` on port 0 with `[listeners.http]` options, `listener_extra` fields and a
/// catch-all route with `action`; admin on port 0; `workers` workers.
fn file_config(workers: usize, listener_extra: &str, http: &str, action: &str) -> String {
    format!(
        r#"workers = {workers}
drain_timeout = "30s"

[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "main"
address = "127.0.0.1:0"
{listener_extra}
  [listeners.http]
{http}

  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]

    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    {action}
"#
    )
}

// ---------------------------------------------------------------------------------------------
// --check

/// `--check` errors: exit status 1, and exactly `file:line:column: path: reason` on stderr.
/// Each case's position is the offending token, counted by hand from the text.
#[test]
fn check_reports_file_line_column_and_path() {
    struct Case {
        what: &'static str,
        text: &'static str,
        /// `line:column: path` that must follow the file name.
        at: &'static str,
        /// Words the reason must contain.
        reason: &'static str,
    }
    let cases = [
        Case {
            what: "syntax error: a value that is not TOML",
            text: "workers = 1\ndrain_timeout = 5s\n",
            //     line 2: `drain_timeout = ` is 16 characters, the bad value starts at 17
            at: "2:17: ",
            reason: "",
        },
        Case {
            what: "unknown field",
            text: "workers = 1\n\n[[listeners]]\nname = \"main\"\n  adress = \"127.0.0.1:0\"\n",
            //     line 5, the key starts after two spaces
            at: "5:3: listeners[0].adress: ",
            reason: "unknown field",
        },
        Case {
            what: "bad socket address",
            text: "[admin]\naddress = \"127.0.0.1:0\"\n\n[[clusters]]\nname = \"b\"\nendpoints = [\"10.0.0.1:80\", \"127.0.0.1\"]\n",
            //     line 6: `endpoints = ["10.0.0.1:80", ` is 28 characters; the bad string at 29
            at: "6:29: clusters[0].endpoints[1]: ",
            reason: "invalid socket address",
        },
        Case {
            what: "route to a missing cluster",
            text: r#"[admin]
enabled = false

[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "nope"
"#,
            //     line 12: four spaces + `cluster = ` is 14 characters; the value at 15
            at: "12:15: listeners[0].virtual_hosts[0].routes[0].cluster: ",
            reason: "unknown cluster \"nope\"",
        },
    ];
    for case in cases {
        let (status, stderr, file) = check(case.text);
        assert_eq!(
            status.code(),
            Some(1),
            "{}: exit status; stderr: {stderr}",
            case.what
        );
        let expected = format!("{file}:{}", case.at);
        let line = stderr
            .lines()
            .find(|l| l.contains(&file))
            .unwrap_or_else(|| panic!("{}: no located error in stderr: {stderr}", case.what));
        let located = line
            .find(&expected)
            .unwrap_or_else(|| panic!("{}: expected {expected:?} in {line:?}", case.what));
        let reason = &line[located + expected.len()..];
        assert!(
            !reason.trim().is_empty() && reason.contains(case.reason),
            "{}: reason {reason:?} should mention {:?}",
            case.what,
            case.reason
        );
    }
}

#[test]
fn check_accepts_a_valid_file_and_the_embedded_default() {
    let valid = file_config(
        1,
        "",
        "",
        r#"direct_response = { status = 200, body = "ok" }"#,
    );
    let (status, stderr, _) = check(&valid);
    assert!(status.success(), "valid file refused: {stderr}");

    let (status, stdout, stderr) = run_to_end(&["--check"]);
    assert!(status.success(), "embedded default refused: {stderr}");
    assert!(stdout.contains("valid"), "stdout: {stdout}");
}

#[test]
fn check_refuses_a_missing_file() {
    let path = std::env::temp_dir().join(format!(
        "ringway-cli-lifecycle-{}-does-not-exist.toml",
        std::process::id()
    ));
    let (status, _, stderr) = run_to_end(&["--check", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Serving

#[test]
fn quick_mode_proxies_to_the_upstream() {
    let backend = Backend::fixed(200, "from the quick backend");
    let upstream = backend.addr.to_string();
    let mut rw = Ringway::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--admin",
        "off",
        "--workers",
        "1",
    ]);
    let started = rw.started();
    assert!(
        started.admin.is_none(),
        "--admin off still printed an admin address"
    );
    assert_eq!(started.listeners.len(), 1, "{:?}", started.listeners);
    let (status, body) = raw_get(started.listener("quick"), "/anything");
    assert_eq!((status, body.as_str()), (200, "from the quick backend"));
    assert_eq!(backend.request_count(), 1);

    // Ctrl-C drains like SIGTERM: nothing is in flight, so the exit is prompt and clean.
    rw.signal(libc::SIGINT);
    let status = rw.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr: {}", rw.stderr());
}

/// `ringway` with no arguments serves the embedded config.toml on 127.0.0.1:8080 (admin on
/// 9901). Skipped, with a message, only when one of those ports is taken on this machine.
#[test]
fn no_arguments_serves_the_embedded_default() {
    for port in [8080, 9901] {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            eprintln!(
                "SKIPPED no_arguments_serves_the_embedded_default: 127.0.0.1:{port} is in use"
            );
            return;
        }
    }
    let mut rw = Ringway::spawn(&[]);
    let started = rw.started();
    let addr = started.listener("http");
    assert_eq!(addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(started.admin, Some("127.0.0.1:9901".parse().unwrap()));
    let (status, body) = raw_get(addr, "/");
    assert_eq!((status, body.as_str()), (200, "ringway is running\n"));
    rw.signal(libc::SIGTERM);
    let status = rw.wait_exit(PATIENCE);
    assert!(status.success(), "exit {status:?}; stderr: {}", rw.stderr());
}

// ---------------------------------------------------------------------------------------------
// SIGTERM drain

/// A request in flight when SIGTERM arrives still gets its whole response (with
/// `Connection: close`); new connections are refused meanwhile; the process exits 0.
#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    // The backend holds every response until the test opens the gate (or 20 s pass), so
    // "in flight" does not depend on timing.
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let backend = Backend::start(move |_req| {
        let g = g.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), g.notified()).await;
            full(200, "finished while draining")
        }
    });
    let cfg = TempConfig::new(
        "drain",
        &format!(
            "{}\n[[clusters]]\nname = \"slow\"\nendpoints = [\"{}\"]\n",
            file_config(2, "", "", r#"cluster = "slow""#),
            backend.addr
        ),
    );
    let mut rw = Ringway::with_config(&cfg);
    let started = rw.started();
    let (addr, admin) = (started.listener("main"), started.admin());

    // An idle connection, open before the signal: draining closes it at once.
    let mut idle = TcpStream::connect(addr).unwrap();

    // A keep-alive request: the proxy must turn it into `Connection: close` while draining.
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut resp = Vec::new();
        let read = s.read_to_end(&mut resp);
        (read.map_err(|e| e.kind()), resp)
    });
    eventually("the request reaches the backend", || {
        backend.request_count() == 1
    });
    eventually("both connections accepted", || {
        stat(admin, "listener.main.downstream_cx_active") == 2
    });
    assert_eq!(raw_get(admin, "/ready"), (200, "LIVE\n".to_owned()));

    rw.signal(libc::SIGTERM);
    assert!(
        closed_within(&mut idle, PATIENCE),
        "idle connection not closed by the drain"
    );
    eventually("/ready reports draining", || {
        raw_get(admin, "/ready") == (503, "DRAINING\n".to_owned())
    });
    eventually("new connections are refused", || {
        match TcpStream::connect(addr) {
            // Refused once every listening socket is closed; a SYN that raced into the
            // accept queue of a socket being closed is reset instead. Either way it is
            // never served.
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                    ),
                    "connect: {e}"
                );
                true
            }
            Ok(_) => false,
        }
    });
    assert!(
        rw.child.try_wait().expect("try_wait").is_none(),
        "ringway exited with a request in flight; stderr: {}",
        rw.stderr()
    );

    gate.notify_one();
    let (read, resp) = client.join().expect("client thread");
    let text = String::from_utf8_lossy(&resp);
    assert_eq!(read, Ok(resp.len()), "read to end: {text}");
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("complete head");
    assert_eq!(body, "finished while draining", "{text}");
    assert_eq!(
        header(head, "connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close"),
        "{head}"
    );

    let status = rw.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr: {}", rw.stderr());
    assert_eq!(backend.request_count(), 1);
}

/// A request that outlives `drain_timeout` does not hold the process: it exits (0) once the
/// drain timeout has passed, and the unfinished request's connection is closed.
#[test]
fn drain_timeout_bounds_the_exit() {
    // The backend never answers within the test (it gives up after 20 s).
    let backend = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        full(200, "too late")
    });
    let text = format!(
        "{}\n[[clusters]]\nname = \"stuck\"\nendpoints = [\"{}\"]\n",
        file_config(1, "", "", r#"cluster = "stuck""#),
        backend.addr
    )
    .replace(r#"drain_timeout = "30s""#, r#"drain_timeout = "300ms""#);
    assert!(text.contains("300ms"), "test config layout");
    let cfg = TempConfig::new("drain-timeout", &text);
    let mut rw = Ringway::with_config(&cfg);
    let addr = rw.started().listener("main");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    eventually("the request reaches the backend", || {
        backend.request_count() == 1
    });

    rw.signal(libc::SIGTERM);
    // Bounded by PATIENCE (20 s), far below the backend's 20 s + the 30 s default drain.
    let status = rw.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr: {}", rw.stderr());
    assert!(
        rw.stderr().contains("drain timeout"),
        "stderr: {}",
        rw.stderr()
    );
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert!(
        !String::from_utf8_lossy(&resp).contains("too late"),
        "the response arrived after all: {:?}",
        String::from_utf8_lossy(&resp)
    );
}

// ---------------------------------------------------------------------------------------------
// SIGHUP reload

#[test]
fn sighup_reloads_the_file_and_keeps_serving_on_a_bad_one() {
    let answer = |body: &str| {
        file_config(
            1,
            "",
            "",
            &format!(r#"direct_response = {{ status = 200, body = "{body}" }}"#),
        )
    };
    let cfg = TempConfig::new("reload", &answer("one"));
    let mut rw = Ringway::with_config(&cfg);
    let addr = rw.started().listener("main");
    assert_eq!(raw_get(addr, "/"), (200, "one".to_owned()));

    cfg.write(&answer("two"));
    rw.signal(libc::SIGHUP);
    eventually("the reloaded config answers", || {
        raw_get(addr, "/").1 == "two"
    });

    // Invalid: the route names a cluster that does not exist. Same text as `answer` up to the
    // action, which is on line 20 after four spaces of indentation.
    let bad = file_config(1, "", "", r#"cluster = "missing""#);
    assert_eq!(
        bad.lines().nth(19),
        Some(r#"    cluster = "missing""#),
        "test config layout"
    );
    cfg.write(&bad);
    rw.signal(libc::SIGHUP);
    let located = format!("{}:20:15: ", cfg.shown());
    eventually("stderr reports the refused reload", || {
        rw.stderr().contains(&located)
    });
    let stderr = rw.stderr();
    let line = stderr.lines().find(|l| l.contains(&located)).unwrap();
    assert!(line.contains("unknown cluster \"missing\""), "{line}");
    for _ in 0..5 {
        assert_eq!(
            raw_get(addr, "/"),
            (200, "two".to_owned()),
            "old config serves"
        );
    }
    assert!(rw.child.try_wait().unwrap().is_none(), "still running");
}

// ---------------------------------------------------------------------------------------------
// Listener timeouts

#[test]
fn idle_keep_alive_connection_is_closed_by_the_idle_timeout() {
    let cfg = TempConfig::new(
        "idle",
        &file_config(
            1,
            "",
            r#"  idle_timeout = "300ms""#,
            r#"direct_response = { status = 200, body = "hi" }"#,
        ),
    );
    let mut rw = Ringway::with_config(&cfg);
    let started = rw.started();
    let addr = started.listener("main");

    // After one exchange the connection is idle keep-alive.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (head, body) = get_keep_alive(&mut s, "/");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, b"hi");
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "idle keep-alive connection still open after 10 s"
    );

    // A connection that never sends a byte is idle too.
    let mut silent = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)),
        "silent connection still open after 10 s"
    );
    let admin = started.admin();
    eventually("both idle timeouts counted", || {
        stat(admin, "http.main.downstream_cx_idle_timeout") == 2
    });
}

#[test]
fn half_a_request_head_gets_408_and_close() {
    let cfg = TempConfig::new(
        "header-timeout",
        &file_config(
            1,
            "",
            r#"  request_header_timeout = "300ms""#,
            r#"direct_response = { status = 200, body = "hi" }"#,
        ),
    );
    let mut rw = Ringway::with_config(&cfg);
    let started = rw.started();
    let mut s = TcpStream::connect(started.listener("main")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /slowloris HTTP/1.1\r\nHost: test\r\nX-Half: ")
        .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .expect("the proxy answers and closes within 10 s");
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    let (head, _) = text.split_once("\r\n\r\n").expect("complete head");
    assert_eq!(
        header(head, "connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close"),
        "{head}"
    );
    assert_eq!(
        stat(started.admin(), "http.main.downstream_rq_timeout"),
        1,
        "counted before the reply was written"
    );
}

// ---------------------------------------------------------------------------------------------
// Connection limit

#[test]
fn connection_limit_closes_the_third_connection() {
    let cfg = TempConfig::new(
        "limit",
        &file_config(
            1,
            "max_connections_per_worker = 2",
            "",
            r#"direct_response = { status = 200, body = "in" }"#,
        ),
    );
    let mut rw = Ringway::with_config(&cfg);
    let started = rw.started();
    let (addr, admin) = (started.listener("main"), started.admin());

    // Two connections, each proven accepted by a completed keep-alive exchange.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (head, body) = get_keep_alive(&mut s, "/");
            assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
            assert_eq!(body, b"in");
            s
        })
        .collect();

    // The third is accepted by the kernel, then closed by the worker without a response.
    let mut third = TcpStream::connect(addr).unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(
        closed_within(&mut third, Duration::from_secs(10)),
        "third connection neither answered nor closed"
    );
    assert_eq!(stat(admin, "listener.main.downstream_cx_overflow"), 1);

    // The first two still work.
    for s in &mut held {
        let (head, _) = get_keep_alive(s, "/");
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    }

    // Closing one frees a slot.
    drop(held.pop());
    eventually("a freed slot admits a new connection", || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        resp.starts_with(b"HTTP/1.1 200 ")
    });
    assert!(stat(admin, "listener.main.downstream_cx_overflow") >= 1);
}

// ---------------------------------------------------------------------------------------------
// WebSocket / Upgrade

/// What the raw upgrade backend saw on its one connection.
struct UpgradeSeen {
    head: String,
    echoed: Vec<u8>,
    /// The proxy closed (or half-closed) its side: the backend's read returned 0.
    saw_eof: bool,
}

/// A std::net backend for one connection: read the request head, answer 101, send `greeting`,
/// then echo every byte until end of stream, then close.
fn upgrade_backend(greeting: &'static [u8]) -> (SocketAddr, mpsc::Receiver<UpgradeSeen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            match s.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let mut seen = UpgradeSeen {
            head,
            echoed: Vec::new(),
            saw_eof: false,
        };
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
        let _ = s.write_all(greeting);
        // Bytes that arrived with the head belong to the tunnel.
        if !buf.is_empty() {
            let _ = s.write_all(&buf);
            seen.echoed.extend_from_slice(&buf);
        }
        loop {
            match s.read(&mut chunk) {
                Ok(0) => {
                    seen.saw_eof = true;
                    break;
                }
                Ok(n) => {
                    seen.echoed.extend_from_slice(&chunk[..n]);
                    if s.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        drop(s);
        let _ = tx.send(seen);
    });
    (addr, rx)
}

#[test]
fn websocket_upgrade_is_tunnelled_both_ways_and_closes_with_the_client() {
    let (backend, seen) = upgrade_backend(b"server speaks first|");
    let proxy = Proxy::start(&support::one_route(backend));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(header(&head, "upgrade"), Some("websocket"), "{head}");
    assert!(
        header(&head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{head}"
    );

    // Upstream -> client without any client bytes first.
    let greeting = read_exact_more(&mut s, &mut buf, b"server speaks first|".len());
    assert_eq!(greeting, b"server speaks first|");

    // Client -> upstream -> client, several rounds, including bytes that are not HTTP.
    let mut sent = Vec::new();
    for round in 0..3u8 {
        let msg: Vec<u8> = (0..=255u8).chain([b'\r', b'\n', round]).collect();
        s.write_all(&msg).unwrap();
        sent.extend_from_slice(&msg);
        let back = read_exact_more(&mut s, &mut buf, msg.len());
        assert_eq!(back, msg, "round {round}");
    }

    // Closing the client's side closes the tunnel: the backend sees end of stream, closes,
    // and the client then sees end of stream too.
    s.shutdown(Shutdown::Write).unwrap();
    let seen = seen
        .recv_timeout(PATIENCE)
        .expect("backend saw the tunnel close");
    assert!(seen.saw_eof, "backend read ended with an error, not EOF");
    assert_eq!(seen.echoed, sent);
    assert!(
        seen.head.starts_with("GET /chat HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert!(
        header(&seen.head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "upstream head: {}",
        seen.head
    );
    assert!(
        header(&seen.head, "connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")),
        "upstream head: {}",
        seen.head
    );
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "client side of the tunnel still open"
    );
    assert!(buf.is_empty(), "stray bytes: {buf:?}");
    assert_eq!(proxy.stat("http.main.downstream_cx_upgrades_total"), 1);
    proxy.eventually("tunnel gauge back to 0", |p| {
        p.stat("http.main.downstream_cx_upgrades_active") == 0
    });
}

/// Bytes of a deterministic pseudo-random stream (xorshift64*), `seed` picking the stream.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// FNV-1a 64 of `bytes`, continuing from `h` (start at [`FNV_START`]).
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Read `s` to end of stream, checksumming from `h`: (length, checksum).
fn drain_summing(s: &mut TcpStream, mut h: u64) -> (usize, u64) {
    let mut len = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (len, h),
            Ok(n) => {
                len += n;
                h = fnv(h, &chunk[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read after {len} bytes: {e}"),
        }
    }
}

/// Accept one connection on `listener`, read the request head, answer 101; returns the stream
/// and the request head. Bytes past the head are not expected (the client waits for the 101).
fn accept_upgrade(listener: &TcpListener) -> (TcpStream, String) {
    let (mut s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(buf.is_empty(), "bytes past the request head: {}", buf.len());
    s.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .unwrap();
    (s, head)
}

const UPGRADE_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// 8 MiB each way at the same time through one tunnel (plain TCP both sides: the spliced
/// path), checked by length and checksum; the client then half-closes while the backend is
/// still sending: the backend sees end of stream, sends a tail after it, and the client gets
/// every byte before its own end of stream. The HTTP byte counters (what the access log
/// records) count the heads plus every tunnelled byte.
#[test]
fn upgrade_tunnel_moves_8_mib_each_way_at_once_and_passes_a_half_close() {
    const BIG: usize = 8 << 20;
    const TAIL: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = listener.local_addr().unwrap();
    let backend = std::thread::spawn(move || {
        let (s, _head) = accept_upgrade(&listener);
        let mut reader = s.try_clone().unwrap();
        let (eof_tx, eof_rx) = mpsc::channel();
        let read = std::thread::spawn(move || {
            let got = drain_summing(&mut reader, FNV_START);
            let _ = eof_tx.send(());
            got
        });
        let mut w = s;
        w.write_all(&pattern(2, BIG)).expect("backend write");
        // Only after the client's half-close has arrived: this direction keeps going.
        eof_rx
            .recv_timeout(PATIENCE)
            .expect("backend saw the client's end");
        w.write_all(&pattern(3, TAIL))
            .expect("backend write after half-close");
        w.shutdown(Shutdown::Write).unwrap();
        read.join().unwrap()
    });

    let proxy = Proxy::start(&support::one_route(backend_addr));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(UPGRADE_REQUEST).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");

    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&pattern(1, BIG)).expect("client write");
        w.shutdown(Shutdown::Write).unwrap();
    });
    let (more, h) = drain_summing(&mut s, fnv(FNV_START, &buf));
    let len = buf.len() + more;
    writer.join().unwrap();

    let mut want = pattern(2, BIG);
    want.extend_from_slice(&pattern(3, TAIL));
    assert_eq!(len, BIG + TAIL, "bytes the client got");
    assert_eq!(h, fnv(FNV_START, &want), "checksum of what the client got");
    let (up_len, up_h) = backend.join().unwrap();
    assert_eq!(up_len, BIG, "bytes the backend got");
    assert_eq!(up_h, fnv(FNV_START, &pattern(1, BIG)), "checksum upstream");

    proxy.eventually("tunnel accounted", |p| {
        p.stat("http.main.downstream_cx_upgrades_active") == 0
            && p.stat("http.main.downstream_cx_rx_bytes_total") > 0
    });
    assert_eq!(proxy.stat("http.main.downstream_cx_upgrades_total"), 1);
    assert_eq!(
        proxy.stat("http.main.downstream_cx_rx_bytes_total"),
        (UPGRADE_REQUEST.len() + BIG) as i64
    );
    assert_eq!(
        proxy.stat("http.main.downstream_cx_tx_bytes_total"),
        (head.len() + BIG + TAIL) as i64
    );
}

/// The listener's `[listeners.http] idle_timeout` bounds a tunnel: traffic more often than the
/// timeout keeps it open past it, and once neither side sends, both sides are closed after
/// about the timeout.
#[test]
fn upgrade_tunnel_is_closed_by_the_listeners_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(400);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = listener.local_addr().unwrap();
    let backend = std::thread::spawn(move || {
        let (mut s, _head) = accept_upgrade(&listener);
        // Echo until the proxy closes the tunnel; report how it ended.
        let mut chunk = [0u8; 1024];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => s.write_all(&chunk[..n]).unwrap(),
                Err(e) => panic!("backend read: {e}"),
            }
        }
    });
    let config = format!(
        "[[listeners]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n  [listeners.http]\n  \
         idle_timeout = \"{}ms\"\n{}",
        IDLE.as_millis(),
        support::one_route(backend_addr)
            .split_once("address = \"127.0.0.1:0\"\n")
            .expect("one_route's listener")
            .1
    );
    let proxy = Proxy::start(&config);
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(UPGRADE_REQUEST).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");

    // A message every quarter of the timeout, for twice the timeout: still open.
    let started = Instant::now();
    for round in 0..8u8 {
        std::thread::sleep(IDLE / 4);
        s.write_all(&[round; 16]).unwrap();
        assert_eq!(read_exact_more(&mut s, &mut buf, 16), [round; 16]);
    }
    assert!(started.elapsed() > IDLE);

    // Then silence: the proxy closes both sides, after the timeout, well before PATIENCE.
    let silent = Instant::now();
    assert!(closed_within(&mut s, PATIENCE), "silent tunnel still open");
    let waited = silent.elapsed();
    assert!(
        waited >= IDLE - Duration::from_millis(50),
        "closed early: {waited:?}"
    );
    assert!(waited < IDLE * 10, "closed late: {waited:?}");
    assert!(backend.join().unwrap(), "backend saw the tunnel close");
    proxy.eventually("tunnel gauge back to 0", |p| {
        p.stat("http.main.downstream_cx_upgrades_active") == 0
    });
}

/// An upstream reset ends the whole tunnel at once: the client, which has not closed its
/// side, is closed too (long before the 60 s default idle timeout).
#[test]
fn upstream_reset_ends_the_upgrade_tunnel() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = listener.local_addr().unwrap();
    let (reset_tx, reset_rx) = mpsc::channel::<()>();
    let backend = std::thread::spawn(move || {
        let (mut s, _head) = accept_upgrade(&listener);
        s.write_all(b"hello|").unwrap();
        reset_rx.recv_timeout(PATIENCE).expect("told to reset");
        // Linger 0: close sends RST, not FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    });
    let proxy = Proxy::start(&support::one_route(backend_addr));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(UPGRADE_REQUEST).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(read_exact_more(&mut s, &mut buf, 6), b"hello|");
    reset_tx.send(()).unwrap();
    backend.join().unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "client side still open after the upstream reset"
    );
    proxy.eventually("tunnel gauge back to 0", |p| {
        p.stat("http.main.downstream_cx_upgrades_active") == 0
    });
}

/// Reloads that cannot be applied without a restart, or whose file is gone, are refused with
/// a message and the running configuration keeps serving.
#[test]
fn sighup_refuses_listener_changes_and_unreadable_files() {
    let text = file_config(
        1,
        "",
        "",
        r#"direct_response = { status = 200, body = "steady" }"#,
    );
    let cfg = TempConfig::new("reload-refused", &text);
    let mut rw = Ringway::with_config(&cfg);
    let addr = rw.started().listener("main");
    assert_eq!(raw_get(addr, "/"), (200, "steady".to_owned()));

    // A renamed listener: valid on its own, but listeners change only with a restart.
    cfg.write(&text.replace(r#"name = "main""#, r#"name = "renamed""#));
    rw.signal(libc::SIGHUP);
    eventually("stderr reports the listener change", || {
        rw.stderr().contains("listeners changed")
    });
    assert_eq!(raw_get(addr, "/"), (200, "steady".to_owned()));

    // The file disappears.
    std::fs::remove_file(cfg.path()).unwrap();
    rw.signal(libc::SIGHUP);
    let cannot_read = format!("cannot read {}", cfg.shown());
    eventually("stderr reports the unreadable file", || {
        rw.stderr().contains(&cannot_read)
    });
    assert_eq!(raw_get(addr, "/"), (200, "steady".to_owned()));
    assert!(rw.child.try_wait().unwrap().is_none(), "still running");
}
