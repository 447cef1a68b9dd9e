//! Interoperability with curl as an independent client, and a memory bound on streaming.
//! The curl tests need the `curl` program (`.ci/run` installs it).

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs curl"]
fn curl_get_keepalive_and_headers() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let url = format!("http://{}/a?b=c", proxy.addr());
    // Two URLs on one curl invocation reuse the connection: curl says so on stderr.
    let (out, err) = curl(&["-v", "--http1.1", "-D", "-", "-o", "/dev/null", &url, &url]);
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
    assert!(out.contains("x-echo-uri: /a?b=c"), "{out}");
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing"),
        "{err}"
    );
}

#[test]
#[ignore = "needs curl"]
fn curl_chunked_upload_with_expect_continue() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let url = format!("http://{}/upload", proxy.addr());
    let dir = std::env::temp_dir().join(format!("ringway-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out_file = dir.join("echo.bin");
    // `-T -` from stdin uploads chunked; a large upload makes curl send Expect: 100-continue.
    let mut child = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--http1.1",
            "-v",
            "-T",
            "-",
        ])
        .arg("-o")
        .arg(&out_file)
        .arg(&url)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Transfer-Encoding: chunked"), "{err}");
    assert!(
        err.contains("HTTP/1.1 100 Continue"),
        "the proxy answers 100-continue: {err}"
    );
    let echoed = std::fs::read(&out_file).unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed body differs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs curl"]
fn curl_sees_local_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Proxy::start(&one_route(closed));
    let (out, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{}/", proxy.addr()),
    ]);
    assert_eq!(out, "502");
}

/// Peak RSS of a process in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// 64 MiB streamed each way through the real binary (upload to a sink, then a download) must not grow
/// the proxy's memory with the body: its peak RSS stays far below the body size.
#[test]
fn streaming_memory_does_not_grow_with_body_size() {
    // A backend that discards a content-length upload, then serves a large download.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    const SIZE: u64 = 64 * 1024 * 1024;
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte).unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).to_lowercase();
            if text.starts_with("post") {
                let mut left = SIZE;
                let mut buf = vec![0u8; 64 * 1024];
                while left > 0 {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "upload cut short");
                    left -= n as u64;
                }
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .unwrap();
            } else {
                s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .unwrap();
                let chunk = vec![b'z'; 64 * 1024];
                for _ in 0..SIZE / chunk.len() as u64 {
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let exe = env!("CARGO_BIN_EXE_ringway");
    let mut child = Command::new(exe)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &backend.to_string(),
            "--admin",
            "off",
            "--workers",
            "1",
        ])
        .env(
            "RINGWAY_IO_DRIVER",
            if matches!(driver(), engine::IoDriver::Legacy) {
                "legacy"
            } else {
                "auto"
            },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut first = String::new();
    let mut byte = [0u8; 1];
    while !first.ends_with('\n') {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "ringway exited");
        first.push(byte[0] as char);
    }
    let addr = first.trim().rsplit("http://").next().unwrap().to_owned();
    let pid = child.0.id();
    let baseline = peak_rss_kib(pid);

    let mut up = std::net::TcpStream::connect(&addr).unwrap();
    up.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    up.write_all(
        format!(
            "POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {SIZE}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = vec![b'u'; 256 * 1024];
    for _ in 0..SIZE / chunk.len() as u64 {
        up.write_all(&chunk).unwrap();
    }
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    let mut down = std::net::TcpStream::connect(&addr).unwrap();
    down.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    down.write_all(b"GET /down HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = down.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(total > SIZE, "whole download relayed: {total}");

    let peak = peak_rss_kib(pid);
    let growth_mib = (peak.saturating_sub(baseline)) / 1024;
    // 128 MiB went through; the buffers in flight are a few hundred KiB.
    assert!(
        growth_mib < 32,
        "proxy peak RSS grew by {growth_mib} MiB (baseline {baseline} KiB, peak {peak} KiB)"
    );
}
