#!/usr/bin/env python3
"""Render bench/run.sh measurements as the markdown report on stdout.

Reads WORK/results.tsv (proxy, scenario, key, value lines written by run.sh), the wrk outputs
it names, WORK/versions.txt, WORK/commands.txt and WORK/pinning.txt. For every scenario it prints
one table (requests/s, p50/p99 latency, proxy CPU per request, RSS) with a row per target and
a row of ringway's ratio to the best peer (nginx, haproxy, envoy) for each figure. A target that
could not run a scenario here (a `skip` record) gets an "n/a" row with the reason.
"""
import argparse
import collections
import json
import os
import re
import sys

PEERS = ("nginx", "haproxy", "envoy")
ORDER = ("baseline", "ringway") + PEERS
TITLES = {
    "mem": "Memory: idle keep-alive connections",
    "h1_small": "HTTP/1.1 keep-alive, small body",
    "h1_64k": "HTTP/1.1 keep-alive, 64 KiB body",
    "h1_newconn": "HTTP/1.1, new connection per request (small body)",
    "https": "HTTPS: HTTP/1.1 keep-alive over TLS, small body",
    "h2c": "HTTP/2 cleartext (h2c)",
    "h2tls": "HTTP/2 over TLS (ALPN h2)",
    "grpc": "gRPC unary (h2c in, HTTP/2 upstream)",
    "tcp": "TCP proxy",
}
H2LOAD_SCENARIOS = ("h2c", "h2tls", "grpc")

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    """wrk latency such as 512.00us, 1.23ms or 2.00s -> milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def parse_wrk(path):
    """Requests/s, request count, p50/p99 in ms and error notes from one `wrk --latency` output."""
    out = {}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return out
    if m := re.search(r"Requests/sec:\s+([0-9.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in ", text):
        out["requests"] = int(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M):
            out[f"p{pct}"] = to_ms(m.group(1))
    notes = []
    if m := re.search(r"Socket errors: (.*)", text):
        notes.append("socket errors: " + m.group(1).strip())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        notes.append(f"{m.group(1)} non-2xx/3xx responses")
    if notes:
        out["notes"] = notes
    return out


def parse_h2load(path):
    """Successful requests/s, mean request time (ms) and failure notes from one h2load output.

    requests/s is counted from 2xx responses over the measured time, so a proxy that answers
    every stream with an error, or refuses the HTTP/2 preface, scores 0 (reported unsupported).
    """
    out = {}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return out
    secs = None
    if m := re.search(r"finished in ([0-9.]+)(ms|s),", text):
        secs = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    ok = None
    if m := re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", text):
        total, _, done, ok, failed, errored, timeout = (int(g) for g in m.groups())
        if failed or errored or timeout:
            out["notes"] = [f"{failed} failed, {errored} errored, {timeout} timed out of {total}"]
    if m := re.search(r"status codes: (\d+) 2xx", text):
        ok = int(m.group(1)) if ok is None else min(ok, int(m.group(1)))
    out["requests"] = ok or 0
    if secs and ok:
        out["rps"] = ok / secs
    if m := re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text):
        out["mean"] = to_ms(m.group(3))
    if (m := re.search(r"Application protocol: (\S+)", text)) and not m.group(1).startswith("h2"):
        out.setdefault("notes", []).append(f"h2load spoke {m.group(1)}, not h2")
    return out


def parse_iperf(path):
    """Gbit/s received, bytes received, retransmits and an error from one `iperf3 -J` report."""
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError):
        return {"error": "no iperf3 report"}
    out = {}
    if doc.get("error"):
        out["error"] = doc["error"]
    end = doc.get("end", {})
    recv = end.get("sum_received", {})
    if recv.get("bits_per_second"):
        out["gbps"] = recv["bits_per_second"] / 1e9
        out["bytes"] = recv.get("bytes")
    if "retransmits" in end.get("sum_sent", {}):
        out["retrans"] = end["sum_sent"]["retransmits"]
    return out


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(value, best, higher_is_better):
    """ringway / best peer as 'x.xx× name'; the name of the best peer follows."""
    if value is None or best is None or best[0] in (None, 0):
        return "–"
    return f"{value / best[0]:.2f}× {best[1]}"


def best_peer(rows, key, higher_is_better):
    cands = [(rows[p].get(key), p) for p in PEERS if p in rows and rows[p].get(key) is not None]
    if not cands:
        return None
    return max(cands) if higher_is_better else min(cands)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--clk-tck", type=int, required=True)
    ap.add_argument("--raw", default="")
    ap.add_argument("--settings", default="")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--proxy-cpu", default="1")
    ap.add_argument("--load-cpu", default="0")
    ap.add_argument("--shared-cores", default="")
    args = ap.parse_args()

    data = collections.defaultdict(lambda: collections.defaultdict(dict))
    notes = collections.defaultdict(list)
    scen_order = []
    with open(os.path.join(args.work, "results.tsv"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 3)
            if len(parts) != 4:
                continue
            target, scen, key, value = parts
            if scen not in scen_order:
                scen_order.append(scen)
            if key in ("note", "skip"):
                notes[scen].append(f"{target}: {value}")
                data[scen][target]["skip" if key == "skip" else "note"] = value
            else:
                data[scen][target][key] = value

    known = list(TITLES)
    scen_order.sort(key=lambda s: known.index(s) if s in known else len(known))

    def read(name):
        try:
            return open(os.path.join(args.work, name), encoding="utf-8").read().strip()
        except OSError:
            return ""

    p = print
    if args.workers == 1:
        p("# ringway side-by-side benchmark\n")
    elif args.shared_cores:
        p(f"# ringway side-by-side benchmark: {args.workers} workers per proxy, sharing cores "
          "with the load generator\n")
    else:
        p(f"# ringway side-by-side benchmark: {args.workers} workers per proxy\n")
    if args.workers == 1:
        pinning = (f"Each proxy runs one worker pinned to one core (CPU {args.proxy_cpu}); wrk, "
                   f"h2load, the idle client and the shared nginx backend run on CPU {args.load_cpu}.")
    else:
        pinning = (f"Each proxy runs {args.workers} workers, each pinned to one of the cores "
                   f"{args.proxy_cpu}; wrk, h2load, the idle client and the shared nginx backend "
                   f"run on CPU {args.load_cpu}.")
    if args.shared_cores:
        pinning += (f" **The load generator and the backend share core(s) {args.shared_cores} "
                    "with the proxy's workers** (this machine has too few cores for the "
                    f"{args.workers}-worker variant to have cores of its own): the figures are "
                    "indicative only; the variant is meant for machines with more cores.")
    p(f"Produced by `bench/run.sh`. {pinning} Ratios are ringway divided by "
      "the best peer (nginx, HAProxy, Envoy) for that figure: above 1 is better for requests/s, "
      "below 1 is better for latency, CPU and memory. Each measured wrk run follows a warm-up run "
      "of the same shape (not listed below). CPU µs/request is the utime + stime delta of the "
      "proxy's processes (/proc/<pid>/stat) over the measured run divided by its requests; RSS "
      "is VmRSS summed over those processes at the end of the run.\n")
    p(f"Settings: `{args.settings}`\n")
    p("## Versions\n")
    p(read("versions.txt") + "\n")

    for scen in scen_order:
        rows_raw = data[scen]
        p(f"## {TITLES.get(scen, scen)}\n")
        # Targets that could not run this scenario: an "n/a" row each, the reason in the notes.
        na = {t: d["skip"] for t, d in rows_raw.items() if "skip" in d}
        if na and len(na) == len(rows_raw):
            p("Not measured: " + "; ".join(f"{t}: {w}" for t, w in na.items()) + "\n")
            continue
        rows_raw = {t: d for t, d in rows_raw.items() if t not in na}
        notes[scen] = [n for n in notes[scen] if not any(n == f"{t}: {w}" for t, w in na.items())]

        def na_row(t, ncols):
            """The row of a target that could not run the scenario, if it is one."""
            if t in na:
                p(f"| {t} | n/a: {na[t]} |" + " |" * (ncols - 1))

        if scen == "mem":
            rows = {}
            for t, d in rows_raw.items():
                r0 = int(d["rss0_kib"]) if "rss0_kib" in d else None
                rn = int(d["rssN_kib"]) if "rssN_kib" in d else None
                n = int(d["idle_conns"]) if "idle_conns" in d else None
                per = (rn - r0) * 1024 / n if None not in (r0, rn, n) and n else None
                rows[t] = {"rss0": r0, "rssN": rn, "n": n, "per": per}
            p("| proxy | RSS idle, 0 conns (KiB) | RSS with N idle conns (KiB) | N | bytes per idle conn |")
            p("|---|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    p(f"| {t} | {fmt(r['rss0'])} | {fmt(r['rssN'])} | {fmt(r['n'])} | {fmt(r['per'])} |")
                na_row(t, 4)
            if "ringway" in rows:
                r = rows["ringway"]
                p(f"| ringway / best peer | {ratio(r['rss0'], best_peer(rows, 'rss0', False), False)} "
                  f"| {ratio(r['rssN'], best_peer(rows, 'rssN', False), False)} | "
                  f"| {ratio(r['per'], best_peer(rows, 'per', False), False)} |")
        elif scen == "tcp":
            rows = {}
            for t, d in rows_raw.items():
                r = parse_iperf(os.path.join(args.work, d["iperf"])) if "iperf" in d else {}
                ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
                gb = r["bytes"] / 1e9 if r.get("bytes") else None
                r["cpu"] = ticks * 1e3 / args.clk_tck / gb if ticks is not None and gb else None
                r["rss"] = int(d["rss_kib"]) if "rss_kib" in d else None
                if r.get("error"):
                    notes[scen].append(f"{t}: iperf3: {r['error']}")
                rows[t] = r
            direct = rows.get("baseline", {}).get("gbps")
            p("| target | Gbit/s | ratio to direct | CPU ms/GB | retransmits | RSS (KiB) |")
            p("|---|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    rel = f"{r['gbps'] / direct:.2f}" if r.get("gbps") and direct else "–"
                    p(f"| {t} | {fmt(r.get('gbps'), 2)} | {rel} | {fmt(r.get('cpu'), 0)} "
                      f"| {fmt(r.get('retrans'))} | {fmt(r.get('rss'))} |")
                na_row(t, 5)
            if "ringway" in rows:
                r = rows["ringway"]
                cells = [ratio(r.get(k), best_peer(rows, k, k == "gbps"), k == "gbps")
                         for k in ("gbps", "cpu", "rss")]
                p(f"| ringway / best peer | {cells[0]} | | {cells[1]} | | {cells[2]} |")
            p("\nbaseline = iperf3 client straight to the iperf3 server (both on the load core). "
              "CPU ms/GB: the proxy's utime + stime over the run per 10^9 bytes received.")
        elif scen in H2LOAD_SCENARIOS:
            rows = {}
            grpc = scen == "grpc"
            for t, d in rows_raw.items():
                h = parse_h2load(os.path.join(args.work, d["h2load"])) if "h2load" in d else {}
                ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
                reqs = h.get("requests")
                rps = h.get("rps")
                backend = int(d["backend_requests"]) if "backend_requests" in d else None
                if backend is not None and reqs and backend < reqs:
                    # A proxy's own error answer (e.g. grpc-status 14) is HTTP 200 too: count
                    # only the calls the backend received.
                    notes[scen].append(f"{t}: only {backend:,} of {reqs:,} 2xx answers came from "
                                       "the backend; requests/s and CPU count those")
                    rps = rps * backend / reqs
                    reqs = backend
                cpu = ticks * 1e6 / args.clk_tck / reqs if ticks is not None and reqs else None
                rows[t] = {"rps": rps, "mean": h.get("mean"), "cpu": cpu,
                           "rss": int(d["rss_kib"]) if "rss_kib" in d else None,
                           "ok": h.get("requests"), "backend": backend,
                           "unsupported": "h2load" in d and not reqs}
                for n in h.get("notes", []):
                    notes[scen].append(f"{t}: {n}")
            extra_head = " 2xx responses | calls at backend |" if grpc else ""
            p("| target | requests/s | mean (ms) | CPU µs/request | RSS (KiB) |" + extra_head)
            p("|---|---:|---:|---:|---:|" + ("---:|---:|" if grpc else ""))
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    extra = f" {fmt(r['ok'])} | {fmt(r['backend'])} |" if grpc else ""
                    if r["unsupported"]:
                        p(f"| {t} | unsupported (no successful {scen} response) | – | – "
                          f"| {fmt(r['rss'])} |" + extra)
                        continue
                    p(f"| {t} | {fmt(r['rps'])} | {fmt(r['mean'], 3)} | {fmt(r['cpu'], 1)} "
                      f"| {fmt(r['rss'])} |" + extra)
                na_row(t, 6 if grpc else 4)
            for t in PEERS:
                if t in rows and rows[t]["unsupported"]:
                    rows[t] = {}
            if "ringway" in rows and not rows["ringway"]["unsupported"]:
                r = rows["ringway"]
                cells = [ratio(r[k], best_peer(rows, k, k == "rps"), k == "rps")
                         for k in ("rps", "mean", "cpu", "rss")]
                p("| ringway / best peer | " + " | ".join(cells) + " |" + (" | |" if grpc else ""))
            p("\nh2load prints no percentiles: mean is its mean time per request. requests/s "
              "counts 2xx responses only.")
            if scen == "h2tls":
                p("\nh2load offers h2 by ALPN; TLS version and cipher suite as negotiated by "
                  "`openssl s_client` (the same OpenSSL as h2load) are in the notes.")
            if grpc:
                p("\nbaseline = h2load straight to the backend's gRPC server (its CPU column is the "
                  "backend's own CPU). Every call is a POST "
                  "of one framed message with `content-type: application/grpc`; before measuring, "
                  "one call through each proxy must end with `grpc-status: 0` in the trailers "
                  "(nghttp), else the proxy is n/a. calls at backend = the backend's request "
                  "counter (stub_status) over the measured run; requests/s and CPU count at most "
                  "that many.")
        else:
            rows = {}
            for t, d in rows_raw.items():
                w = parse_wrk(os.path.join(args.work, d["wrk"])) if "wrk" in d else {}
                ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
                reqs = w.get("requests")
                cpu = ticks * 1e6 / args.clk_tck / reqs if ticks is not None and reqs else None
                rows[t] = {"rps": w.get("rps"), "p50": w.get("p50"), "p99": w.get("p99"),
                           "cpu": cpu, "rss": int(d["rss_kib"]) if "rss_kib" in d else None}
                for n in w.get("notes", []):
                    notes[scen].append(f"{t}: {n}")
            p("| target | requests/s | p50 (ms) | p99 (ms) | CPU µs/request | RSS (KiB) |")
            p("|---|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    p(f"| {t} | {fmt(r['rps'])} | {fmt(r['p50'], 3)} | {fmt(r['p99'], 3)} "
                      f"| {fmt(r['cpu'], 1)} | {fmt(r['rss'])} |")
                na_row(t, 5)
            if "ringway" in rows:
                r = rows["ringway"]
                cells = [ratio(r[k], best_peer(rows, k, k == "rps"), k == "rps")
                         for k in ("rps", "p50", "p99", "cpu", "rss")]
                p("| ringway / best peer | " + " | ".join(cells) + " |")
            if "baseline" in rows:
                p("\nbaseline = wrk straight to the backend; its CPU column is the backend's own CPU.")
            if scen == "https":
                p("\nwrk offers no ALPN and speaks HTTP/1.1; each proxy forwards plaintext HTTP/1.1 "
                  "to the backend. TLS version and cipher suite as negotiated by `openssl s_client` "
                  "(the same OpenSSL as wrk) are in the notes. The TLS handshakes happen once per "
                  "connection, in the warm-up and at the start of the run.")
        if notes[scen]:
            p("\nNotes: " + "; ".join(notes[scen]))
        p("")

    pin = read("pinning.txt")
    if pin:
        p("## Thread CPU affinity (from /proc, after start)\n")
        p("```\n" + pin + "\n```\n")
    p("## Commands\n")
    p("Configs: `bench/configs/` (ringway.toml, nginx.conf, haproxy.cfg, envoy.yaml, "
      "backend-nginx.conf), templates rendered into the work directory (`conf/`: @WORK@ = the "
      "work directory, which holds the TLS certificate, @WORKERS@, @PROXY_CPUS@, "
      "@NGINX_AFFINITY@); the rendered copies are kept with the raw logs.\n")
    p("```\n" + read("commands.txt") + "\n```")
    if args.raw:
        p(f"\nRaw wrk output and logs: `{os.path.relpath(args.raw, os.getcwd())}` (not committed).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
