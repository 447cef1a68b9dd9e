#!/usr/bin/env python3
"""Open N keep-alive connections to 127.0.0.1:PORT, send one GET on each, read the whole
response, then hold every connection idle until stdin closes (or --hold seconds pass).
With --mark K it stops once K are open ("mark <k>" on stdout) until a line comes on stdin, so
the caller can read the proxy's memory at K and at N: the difference over N - K connections
leaves out what the proxy allocates once, whatever the number of connections.

Used by bench/run.sh to measure a proxy's resident memory per idle keep-alive connection.
Prints "ready <n>" on stdout once all N responses were read; exits non-zero if any connection
failed or a response was not 2xx/3xx. Traffic goes only to 127.0.0.1.
"""
import argparse
import select
import socket
import sys
import time


def read_response(sock: socket.socket, deadline: float) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked) and return its status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += recv(sock, deadline)
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if b"content-length" in fields:
        want = int(fields[b"content-length"])
        while len(body) < want:
            body += recv(sock, deadline)
    elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            body += recv(sock, deadline)
    return status


def recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("response timed out")
    sock.settimeout(left)
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("connection closed before the response ended")
    return data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--batch", type=int, default=250, help="connections opened before reading")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to open them all")
    ap.add_argument("--hold", type=float, default=120.0, help="longest idle hold, seconds")
    ap.add_argument("--mark", type=int, default=0,
                    help="after this many (rounded up to a batch), wait for a line on stdin")
    args = ap.parse_args()

    deadline = time.monotonic() + args.timeout
    req = (f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
           "User-Agent: ringway-bench-idle\r\n\r\n").encode()
    conns = []
    try:
        while len(conns) < args.n:
            batch = []
            for _ in range(min(args.batch, args.n - len(conns))):
                s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
                s.sendall(req)
                batch.append(s)
            for s in batch:
                status = read_response(s, deadline)
                if not 200 <= status < 400:
                    print(f"error: status {status}", file=sys.stderr)
                    return 1
            conns.extend(batch)
            if args.mark and len(conns) - len(batch) < args.mark <= len(conns) < args.n:
                print(f"mark {len(conns)}", flush=True)
                # Bounded like the hold; an empty read means the caller went away.
                ready, _, _ = select.select([sys.stdin], [], [], args.hold)
                if not ready or not sys.stdin.readline():
                    print("error: no go-ahead after the mark", file=sys.stderr)
                    return 1
                # The responses still to come get the time the mark's wait took back.
                deadline = time.monotonic() + args.timeout
    except (OSError, ValueError, IndexError) as e:
        print(f"error after {len(conns)} connections: {e!r}", file=sys.stderr)
        return 1

    print(f"ready {len(conns)}", flush=True)
    # Hold until our parent closes stdin or the hold time ends; then check the proxy kept
    # every connection open (no EOF on any of them).
    select.select([sys.stdin], [], [], args.hold)
    closed = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    if closed:
        print(f"warning: the proxy closed {closed} of {len(conns)} idle connections",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
