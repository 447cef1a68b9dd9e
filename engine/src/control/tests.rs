use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use super::http::{self, Request};
use super::*;

/// Both drivers where the kernel allows io_uring; epoll always.
fn drivers() -> Vec<IoDriver> {
    let mut d = vec![IoDriver::Legacy];
    if monoio::utils::detect_uring() {
        d.push(IoDriver::IoUring);
    }
    d
}

/// Long enough never to fire on a loaded machine; the tests wait on events, not time.
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn spawn_from_any_thread_runs_on_the_control_thread() {
    for driver in drivers() {
        let control = Control::start(driver).unwrap();
        let (tx, rx) = mpsc::channel();
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (h, tx) = (control.handle(), tx.clone());
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let tx = tx.clone();
                        h.spawn(move || {
                            // Built on the control thread: a non-Send future is fine.
                            let here = Rc::new(std::thread::current().name().map(str::to_owned));
                            async move {
                                monoio::time::sleep(Duration::from_millis(1)).await;
                                tx.send((t, i, (*here).clone())).unwrap();
                            }
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..100 {
            let (t, i, name) = rx.recv_timeout(WAIT).unwrap();
            assert_eq!(name.as_deref(), Some("ringway-control"));
            seen.push((t, i));
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100, "{driver:?}");
        // call() brings a value back to a blocking caller.
        let rx = control.handle().call(|| async { 6 * 7 }).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 42);
        control.shutdown();
    }
}

#[test]
fn shutdown_joins_with_tasks_still_running_and_refuses_new_work() {
    for driver in drivers() {
        let control = Control::start(driver).unwrap();
        let handle = control.handle();
        // A task that would run for an hour, and one blocked on a socket that never answers.
        let (started_tx, started_rx) = mpsc::channel();
        let forever = handle
            .call(move || async move {
                started_tx.send(()).unwrap();
                monoio::time::sleep(Duration::from_secs(3600)).await;
            })
            .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let stuck = handle
            .call(move || async move {
                http::request(addr, &Request::get("/"), Duration::from_secs(3600)).await
            })
            .unwrap();
        let _held = silent.accept().unwrap();
        control.shutdown();
        // The thread is gone: nothing queued later runs, and the tasks ended with it.
        assert_eq!(handle.spawn(|| async {}), Err(Stopped));
        assert!(handle.call(|| async { 1 }).is_err());
        // Cancelled, not leaked: their futures (and the senders in them) were dropped.
        let gone = Err(mpsc::RecvTimeoutError::Disconnected);
        assert_eq!(forever.recv_timeout(WAIT), gone);
        assert!(matches!(
            stuck.recv_timeout(WAIT),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ));
    }
}

/// A loopback server answering each connection with `answer` after reading one request;
/// returns its address and the requests it saw (head and body).
fn serve(answers: Vec<&'static [u8]>) -> (SocketAddr, mpsc::Receiver<(String, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for answer in answers {
            let (s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut r = BufReader::new(s);
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = r.into_inner();
            s.write_all(answer).unwrap();
            tx.send((head, body)).unwrap();
            // Dropping `s` closes: ends close-delimited bodies.
        }
    });
    (addr, rx)
}

/// Runs `req` to `addr` on a fresh control runtime and returns the result.
fn run_request(
    driver: IoDriver,
    addr: SocketAddr,
    req: Request,
    timeout: Duration,
) -> Result<http::Response, http::Error> {
    let control = Control::start(driver).unwrap();
    let rx = control
        .handle()
        .call(move || async move { http::request(addr, &req, timeout).await })
        .unwrap();
    let r = rx.recv_timeout(WAIT).unwrap();
    control.shutdown();
    r
}

#[test]
fn http_client_gets_status_and_body() {
    for driver in drivers() {
        let (addr, seen) = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-answer: yes\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\n\r\nuntil close",
        ]);
        let r = run_request(driver, addr, Request::get("/ready?x=1"), WAIT).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"hello");
        assert_eq!(r.header(b"x-answer"), Some(&b"yes"[..]));
        let (head, body) = seen.recv_timeout(WAIT).unwrap();
        assert!(head.starts_with("GET /ready?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        assert!(body.is_empty());

        let req = Request::post("/api/v2/spans", "application/json", &b"[{}]"[..])
            .header("x-b3-sampled", "0");
        let r = run_request(driver, addr, req, WAIT).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(&r.body[..], b"abcde");
        let (head, body) = seen.recv_timeout(WAIT).unwrap();
        assert!(
            head.starts_with("POST /api/v2/spans HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("x-b3-sampled: 0\r\n"), "{head}");
        assert!(head.contains("content-length: 4\r\n"), "{head}");
        assert_eq!(body, b"[{}]");

        let r = run_request(driver, addr, Request::get("/"), WAIT).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(&r.body[..], b"until close");
    }
}

#[test]
fn http_client_times_out_and_reports_failures() {
    for driver in drivers() {
        // Accepts (the kernel does) but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let r = run_request(driver, addr, Request::get("/"), Duration::from_millis(200));
        assert!(matches!(r, Err(http::Error::Timeout)), "{r:?}");
        drop(silent);

        // Nothing listens on a port just released.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = run_request(driver, closed, Request::get("/"), WAIT);
        assert!(matches!(r, Err(http::Error::Connect(_))), "{r:?}");

        // A body cut short, a garbage head, a close before any head.
        let (addr, _seen) = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            b"NOT HTTP AT ALL\r\n\r\n",
            b"",
        ]);
        let r = run_request(driver, addr, Request::get("/"), WAIT);
        assert!(matches!(r, Err(http::Error::Body(_))), "{r:?}");
        let r = run_request(driver, addr, Request::get("/"), WAIT);
        assert!(matches!(r, Err(http::Error::Head(_))), "{r:?}");
        let r = run_request(driver, addr, Request::get("/"), WAIT);
        assert!(matches!(r, Err(http::Error::Closed)), "{r:?}");
    }
}

#[test]
fn http_client_refuses_to_inject_fields() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for req in [
        Request::get("/a\r\nx: y"),
        Request::get("/a b"),
        Request::get(""),
        Request::get("/").header("x", "1\r\nevil: 1"),
        Request::get("/").header("a:b", "1"),
        Request {
            host: Some("h\n".into()),
            ..Request::get("/")
        },
        Request {
            method: "GE T",
            ..Request::get("/")
        },
    ] {
        let r = run_request(IoDriver::Legacy, addr, req.clone(), WAIT);
        assert!(
            matches!(r, Err(http::Error::InvalidRequest(_))),
            "{req:?}: {r:?}"
        );
    }
}
