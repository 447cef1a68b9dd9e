#!/usr/bin/env python3
"""Render bench/run.sh measurements as the markdown report on stdout.

Reads WORK/results.tsv (target, scenario, repetition, key, value lines written by run.sh), the
wrk, h2load and iperf3 outputs it names, WORK/versions.txt, machine.tsv (load samples),
run-notes.txt, commands.txt and pinning.txt. For every scenario it prints one table (requests/s,
latency, proxy CPU per request, the proxy's busy %, its core's and the load core's busy %, RSS)
with a row per target, each cell the median over the repetitions and their spread (min–max),
and a row of ringway's median divided by the best peer's (nginx, haproxy, envoy). A proxy below
90 % busy in any run is marked "(!)": it was not saturated, so its CPU per request is not its
cost at full load. A target that could not run a scenario here (a `skip` record) gets an "n/a"
row with the reason.
"""
import argparse
import collections
import json
import os
import re
import statistics
import sys

PEERS = ("nginx", "haproxy", "envoy")
# ringway-b: a second ringway build (run.sh RINGWAY_BIN_B), a row of its own, never a peer.
ORDER = ("baseline", "ringway", "ringway-b") + PEERS
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


def values(runs, key):
    """The figure KEY of every run that has it."""
    return [r[key] for r in runs if r.get(key) is not None]


def median(runs, key):
    """The median of a numeric figure over the runs, None for text or flags."""
    v = values(runs, key)
    if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return None
    return statistics.median(v)


def cell(runs, key, digits=0):
    """Median over the runs, then the spread (min–max) when there was more than one run."""
    v = values(runs, key)
    if not v:
        return "–"
    if len(v) == 1:
        return fmt(v[0], digits)
    return f"{fmt(statistics.median(v), digits)} ({fmt(min(v), digits)}–{fmt(max(v), digits)})"


def ratio(value, best):
    """ringway / best peer as 'x.xx× name'."""
    if value is None or best is None or best[0] in (None, 0):
        return "–"
    return f"{value / best[0]:.2f}× {best[1]}"


def best_peer(meds, key, higher_is_better):
    """(median, name) of the best peer for KEY; MEDS maps a target to its medians."""
    cands = [(meds[p].get(key), p) for p in PEERS if p in meds and meds[p].get(key) is not None]
    if not cands:
        return None
    return max(cands) if higher_is_better else min(cands)


def paired(byrep, key, a, b):
    """A's figure KEY (lower is better) over B's within each repetition both ran: 'median
    (min–max; A lower in k of n)', or None. The targets of one repetition run back to back, so
    a pair shares the machine's state of the moment; the ratio of medians mixes repetitions
    and carries the machine's drift between them."""
    reps = sorted(set(byrep.get(a, {})) & set(byrep.get(b, {})))
    pairs = []
    for rep in reps:
        x, y = byrep[a][rep].get(key), byrep[b][rep].get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y:
            pairs.append(x / y)
    if not pairs:
        return None
    text = f"{statistics.median(pairs):.2f}"
    if len(pairs) > 1:
        lower = sum(1 for q in pairs if q < 1)
        text += f" ({min(pairs):.2f}–{max(pairs):.2f}; {a} lower in {lower} of {len(pairs)})"
    return text


def paired_line(byrep, key, what):
    """ringway against every other target that ran, paired by repetition, as one line."""
    if "ringway" not in byrep:
        return None
    parts = []
    for t in ORDER:
        if t in ("baseline", "ringway") or t not in byrep:
            continue
        q = paired(byrep, key, "ringway", t)
        if q:
            parts.append(f"ringway / {t} {q}")
    if not parts:
        return None
    return f"Paired by repetition ({what}, each repetition's ratio, then their median): " + \
        "; ".join(parts) + "."


def busy_figures(d, clk_tck):
    """Busy % over one measured run: `busy`, the target's own CPU time (utime + stime of its
    processes) over the wall time, per core it had; `core` and `load`, the proxy's and the load
    cores' busy time over their total (/proc/stat: every program on them, and the kernel);
    `steal`, the proxy cores' steal time (the hypervisor ran something else)."""
    out = {}
    wall = int(d["wall_us"]) / 1e6 if d.get("wall_us") else None
    if wall and "cpu_ticks" in d:
        out["busy"] = int(d["cpu_ticks"]) / clk_tck / wall / float(d.get("cores", 1)) * 100
    for key, name in (("pcore_ticks", "core"), ("lcore_ticks", "load")):
        if key in d:
            busy, steal, total = (int(x) for x in d[key].split())
            if total:
                out[name] = busy * 100 / total
                if name == "core":
                    out["steal"] = steal * 100 / total
    return out


def run_wrk(work, d, clk_tck):
    w = parse_wrk(os.path.join(work, d["wrk"])) if "wrk" in d else {}
    ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
    reqs = w.get("requests")
    r = {"rps": w.get("rps"), "p50": w.get("p50"), "p99": w.get("p99"),
         "cpu": ticks * 1e6 / clk_tck / reqs if ticks is not None and reqs else None,
         "rss": int(d["rss_kib"]) if "rss_kib" in d else None}
    r.update(busy_figures(d, clk_tck))
    return r, w.get("notes", [])


def run_h2load(work, d, clk_tck):
    h = parse_h2load(os.path.join(work, d["h2load"])) if "h2load" in d else {}
    notes = list(h.get("notes", []))
    ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
    reqs = h.get("requests")
    rps = h.get("rps")
    backend = int(d["backend_requests"]) if "backend_requests" in d else None
    if backend is not None and reqs and backend < reqs:
        # A proxy's own error answer (e.g. grpc-status 14) is HTTP 200 too: count only the
        # calls the backend received.
        notes.append(f"only {backend:,} of {reqs:,} 2xx answers came from the backend; "
                     "requests/s and CPU count those")
        rps = rps * backend / reqs
        reqs = backend
    r = {"rps": rps, "mean": h.get("mean"),
         "cpu": ticks * 1e6 / clk_tck / reqs if ticks is not None and reqs else None,
         "rss": int(d["rss_kib"]) if "rss_kib" in d else None,
         "ok": h.get("requests"), "backend": backend,
         "unsupported": "h2load" in d and not reqs}
    r.update(busy_figures(d, clk_tck))
    return r, notes


def run_tcp(work, d, clk_tck):
    r = parse_iperf(os.path.join(work, d["iperf"])) if "iperf" in d else {}
    notes = [f"iperf3: {r['error']}"] if r.get("error") else []
    ticks = int(d["cpu_ticks"]) if "cpu_ticks" in d else None
    gb = r["bytes"] / 1e9 if r.get("bytes") else None
    r["cpu"] = ticks * 1e3 / clk_tck / gb if ticks is not None and gb else None
    r["rss"] = int(d["rss_kib"]) if "rss_kib" in d else None
    r.update(busy_figures(d, clk_tck))
    return r, notes


def run_mem(d):
    """`per`: bytes per idle connection from 0 to N connections; `marginal`: from the mark (K
    connections) to N, which leaves out what the proxy allocates once at its first
    connections (pools, rings, allocator arenas)."""
    r0 = int(d["rss0_kib"]) if "rss0_kib" in d else None
    rk = int(d["rssK_kib"]) if "rssK_kib" in d else None
    rn = int(d["rssN_kib"]) if "rssN_kib" in d else None
    k = int(d["mark_conns"]) if "mark_conns" in d else None
    n = int(d["idle_conns"]) if "idle_conns" in d else None
    per = (rn - r0) * 1024 / n if None not in (r0, rn, n) and n else None
    marginal = (rn - rk) * 1024 / (n - k) if None not in (rk, rn, k, n) and n > k else None
    return {"rss0": r0, "rssK": rk, "rssN": rn, "k": k, "n": n, "per": per,
            "marginal": marginal}, []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--clk-tck", type=int, required=True)
    ap.add_argument("--raw", default="")
    ap.add_argument("--settings", default="")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--proxy-cpu", default="0")
    ap.add_argument("--load-cpu", default="1")
    ap.add_argument("--shared-cores", default="")
    ap.add_argument("--proxy-quota", default="")
    args = ap.parse_args()

    # data[scenario][target][repetition] = {key: value}; notes[scenario] = [(target, rep, text)]
    data = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(dict)))
    notes = collections.defaultdict(list)
    scen_order = []
    with open(os.path.join(args.work, "results.tsv"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 4)
            if len(parts) != 5:
                continue
            target, scen, rep, key, value = parts
            if scen not in scen_order:
                scen_order.append(scen)
            if key == "note":
                notes[scen].append((target, int(rep), value))
            data[scen][target][int(rep)][key] = value

    known = list(TITLES)
    scen_order.sort(key=lambda s: known.index(s) if s in known else len(known))

    def read(name):
        try:
            return open(os.path.join(args.work, name), encoding="utf-8").read().strip()
        except OSError:
            return ""

    def note_text(items):
        """Notes grouped by target and text; the runs named unless the note held in every run."""
        grouped = collections.defaultdict(list)
        for t, rep, text in items:
            if rep not in grouped[(t, text)]:
                grouped[(t, text)].append(rep)
        out = []
        for (t, text), reps in grouped.items():
            # rep 0: a note on the row as a whole (from the figures of every run).
            runs = "" if 0 in reps or len(reps) >= args.reps or args.reps == 1 else \
                f" (run {', '.join(str(r) for r in sorted(reps))} of {args.reps})"
            out.append(f"{t}{runs}: {text}")
        return "; ".join(out)

    p = print

    def show_paired(byrep, key, what):
        """The paired-by-repetition line under a table, when there was more than one."""
        line = paired_line(byrep, key, what) if args.reps > 1 else None
        if line:
            p("\n" + line)
    if args.workers == 1:
        p("# ringway side-by-side benchmark\n")
    elif args.shared_cores:
        p(f"# ringway side-by-side benchmark: {args.workers} workers per proxy, sharing cores "
          "with the load generator\n")
    else:
        p(f"# ringway side-by-side benchmark: {args.workers} workers per proxy\n")

    machine = [line.split("\t") for line in read("machine.tsv").splitlines() if line.count("\t") == 3]
    busy_samples = [m for m in machine if m[3] == "1"]
    if busy_samples:
        p("> **The machine was busy during this run** (other programs were running: "
          + "; ".join(f"{m[0]}, load average {m[1]}, {m[2]} % of the CPUs busy" for m in busy_samples)
          + "). Its figures are not comparable with those of a quiet run.\n")

    if args.workers == 1:
        pinning = (f"Each proxy runs one worker pinned to one core (CPU {args.proxy_cpu}); wrk, "
                   f"h2load, iperf3, the idle client and the shared nginx backend run on CPU "
                   f"{args.load_cpu}.")
    else:
        pinning = (f"Each proxy runs {args.workers} workers, each pinned to one of the cores "
                   f"{args.proxy_cpu}; wrk, h2load, iperf3, the idle client and the shared nginx "
                   f"backend run on CPU {args.load_cpu}.")
    if args.shared_cores:
        pinning += (f" **The load generator and the backend share core(s) {args.shared_cores} "
                    "with the proxy's workers** (this machine has too few cores for the "
                    f"{args.workers}-worker variant to have cores of its own): the figures are "
                    "indicative only, busy % included; the variant is meant for machines with "
                    "more cores.")
    if args.proxy_quota:
        pinning += (f" **Each proxy may use only {args.proxy_quota} % of each of its cores** (a "
                    "cgroup CPU quota over a 10 ms period), so that it, not the load core, is "
                    "the limit; its busy % is of that share (the load core runs the load "
                    "generator and the backend at full speed). Meant for scenarios whose load "
                    "side saturates first on a small machine, such as a new connection per "
                    "request: a quota'd proxy handles a backlog at each turn as a saturated one "
                    "does, so CPU per request compares as at full load. Latency reflects the "
                    "quota's throttling (the rest of each period is waited out once the share is "
                    "spent): compare CPU.")
    reps = (f"The whole sequence ran {args.reps} times; each cell is the median of the "
            f"{args.reps} runs, then (min–max). " if args.reps > 1 else "One run. ")
    p(f"Produced by `bench/run.sh`. {pinning} {reps}The backend answers the small body from "
      "memory (nginx `return 200`) and the 64 KiB body from a cached open file with sendfile, so "
      "that the proxy's core, not the load core, is the limit. Ratios are ringway's median "
      "divided by the best peer's (nginx, HAProxy, Envoy) for that figure: above 1 is better for "
      "requests/s, below 1 is better for latency, CPU and memory. Each measured run follows a "
      "warm-up run of the same shape (not listed below).\n")
    p("- CPU µs/request: the utime + stime delta of the proxy's processes (/proc/<pid>/stat) "
      "over the measured run, divided by its requests.\n"
      "- busy %: the same CPU time divided by the run's wall time and by the proxy's cores: how "
      "saturated the proxy was. Only at about 100 % is CPU per request its cost at full load (a "
      "part-idle proxy handles fewer events per wake-up). **(!)** after a name: below 90 % in at "
      "least one run. For baseline rows it is the backend's (one worker).\n"
      "- core %: the proxy's core(s) busy over the run from /proc/stat, every program and the "
      "kernel included; well above busy % means something else ran there.\n"
      "- load core %: the same for the load core(s) (wrk/h2load/iperf3 and the backend); near "
      "100 % with the proxy below 90 % means the load side was the limit.\n"
      "- RSS: VmRSS summed over the proxy's processes at the end of the run.\n")
    p(f"Settings: `{args.settings}`\n")
    run_notes = read("run-notes.txt")
    if run_notes:
        p(run_notes + "\n")
    p("## Versions\n")
    p(read("versions.txt") + "\n")
    if machine:
        p("## Machine load\n")
        p("Sampled over 2 s with none of the benchmark's load running (only the idle backend); "
          "busy = more than 10 % of the CPUs busy (the load average, which lags by minutes and "
          "still counts the previous repetition's load, is shown but does not decide).\n")
        p("| when | load average | CPUs busy | |\n|---|---|---:|---|")
        for m in machine:
            p(f"| {m[0]} | {m[1]} | {m[2]} % | {'**busy**' if m[3] == '1' else 'quiet'} |")
        p("")

    for scen in scen_order:
        targets = data[scen]
        p(f"## {TITLES.get(scen, scen)}\n")
        # Targets that could not run this scenario: an "n/a" row each, the reason in the notes.
        na = {t: next(d["skip"] for d in runs.values() if "skip" in d)
              for t, runs in targets.items() if any("skip" in d for d in runs.values())}
        if na and len(na) == len(targets):
            p("Not measured: " + "; ".join(f"{t}: {w}" for t, w in na.items()) + "\n")
            continue
        scen_notes = [n for n in notes[scen] if n[0] not in na]

        # rows[target] = [figures of each run]
        rows = {}
        # byrep[target][repetition] = figures of that run, for ratios paired by repetition
        byrep = collections.defaultdict(dict)
        for t, runs in targets.items():
            if t in na:
                continue
            rows[t] = []
            for rep in sorted(runs):
                d = runs[rep]
                if scen == "mem":
                    r, ns = run_mem(d)
                elif scen == "tcp":
                    r, ns = run_tcp(args.work, d, args.clk_tck)
                elif scen in H2LOAD_SCENARIOS:
                    r, ns = run_h2load(args.work, d, args.clk_tck)
                else:
                    r, ns = run_wrk(args.work, d, args.clk_tck)
                rows[t].append(r)
                byrep[t][rep] = r
                scen_notes.extend((t, rep, n) for n in ns)
        meds = {t: {k: median(runs, k) for k in (runs[0] if runs else {})} for t, runs in rows.items()}

        def name(t):
            """The row's name, with (!) when the proxy was below 90 % busy in some run."""
            return f"{t} (!)" if t in unsaturated else t

        def na_row(t, ncols):
            if t in na:
                p(f"| {t} | n/a: {na[t]} |" + " |" * (ncols - 1))

        def busy_cells(t):
            return f"{cell(rows[t], 'busy')} | {cell(rows[t], 'core')} | {cell(rows[t], 'load')}"

        # A proxy below 90 % busy in some run was not saturated there; then, from the medians,
        # why: the load core was full, or something else ran on the proxy's core.
        unsaturated = set()
        for t, m in meds.items():
            if t == "baseline" or m.get("busy") is None:
                continue
            b = values(rows[t], "busy")
            low = sum(1 for v in b if v < 90)
            if low:
                unsaturated.add(t)
                scen_notes.append((t, 0, f"busy below 90 % in {low} of {len(b)} runs "
                                   f"({', '.join(f'{v:.0f}' for v in b)} %): not saturated"))
            if m["busy"] < 90 and (m.get("load") or 0) > 95:
                scen_notes.append((t, 0, f"the load core was {m['load']:.0f} % busy (load "
                                   "generator, backend and anything else there): the proxy "
                                   "was not the limit"))
            if not args.shared_cores and m.get("core") is not None and m["core"] - m["busy"] > 10:
                scen_notes.append((t, 0, f"its core was {m['core']:.0f} % busy but it used "
                                   f"{m['busy']:.0f} %: other programs or kernel threads ran there"))
            if (m.get("steal") or 0) > 2:
                scen_notes.append((t, 0, f"{m['steal']:.0f} % of its core's time was stolen by "
                                   "the hypervisor"))

        if scen == "mem":
            marked = any(r.get("marginal") is not None for rs in rows.values() for r in rs)
            if marked:
                p("| proxy | RSS idle, 0 conns (KiB) | RSS with K idle conns (KiB) | K "
                  "| RSS with N idle conns (KiB) | N | bytes per idle conn, 0 to N "
                  "| bytes per idle conn, K to N |")
                p("|---|---:|---:|---:|---:|---:|---:|---:|")
            else:
                p("| proxy | RSS idle, 0 conns (KiB) | RSS with N idle conns (KiB) | N | bytes per idle conn |")
                p("|---|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    if marked:
                        p(f"| {t} | {cell(r, 'rss0')} | {cell(r, 'rssK')} | {cell(r, 'k')} "
                          f"| {cell(r, 'rssN')} | {cell(r, 'n')} | {cell(r, 'per')} "
                          f"| {cell(r, 'marginal')} |")
                    else:
                        p(f"| {t} | {cell(r, 'rss0')} | {cell(r, 'rssN')} | {cell(r, 'n')} | {cell(r, 'per')} |")
                na_row(t, 7 if marked else 4)
            if "ringway" in meds:
                m = meds["ringway"]
                first = (f"| ringway / best peer | {ratio(m.get('rss0'), best_peer(meds, 'rss0', False))} "
                         + (f"| {ratio(m.get('rssK'), best_peer(meds, 'rssK', False))} | " if marked else "")
                         + f"| {ratio(m.get('rssN'), best_peer(meds, 'rssN', False))} | "
                         f"| {ratio(m.get('per'), best_peer(meds, 'per', False))} |")
                if marked:
                    first += f" {ratio(m.get('marginal'), best_peer(meds, 'marginal', False))} |"
                p(first)
            if marked:
                p("\nK to N: the RSS added by the connections after the first K, over their "
                  "number; what a proxy allocates once at its first connections (buffer pools, "
                  "io_uring buffer rings, allocator arenas), whatever their number, falls before "
                  "K. 0 to N counts it too.")
            for key, what in (("per", "bytes per idle connection, 0 to N"),
                              ("marginal", "bytes per idle connection, K to N")):
                show_paired(byrep, key, what)
        elif scen == "tcp":
            direct = meds.get("baseline", {}).get("gbps")
            p("| target | Gbit/s | ratio to direct | CPU ms/GB | busy % | core % | load core % "
              "| retransmits | RSS (KiB) |")
            p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r, m = rows[t], meds[t]
                    rel = f"{m['gbps'] / direct:.2f}" if m.get("gbps") and direct else "–"
                    p(f"| {name(t)} | {cell(r, 'gbps', 2)} | {rel} | {cell(r, 'cpu')} "
                      f"| {busy_cells(t)} | {cell(r, 'retrans')} | {cell(r, 'rss')} |")
                na_row(t, 8)
            if "ringway" in meds:
                m = meds["ringway"]
                cells = [ratio(m.get(k), best_peer(meds, k, k == "gbps")) for k in ("gbps", "cpu", "rss")]
                p(f"| ringway / best peer | {cells[0]} | | {cells[1]} | | | | | {cells[2]} |")
            show_paired(byrep, "cpu", "CPU ms/GB")
            p("\nbaseline = iperf3 client straight to the iperf3 server (both on the load core). "
              "CPU ms/GB: the proxy's utime + stime over the run per 10^9 bytes received.")
        elif scen in H2LOAD_SCENARIOS:
            grpc = scen == "grpc"
            # A target that got no successful response in any run does not speak the protocol.
            unsupported = {t for t, runs in rows.items() if runs and all(r["unsupported"] for r in runs)}
            extra_head = " 2xx responses | calls at backend |" if grpc else ""
            p("| target | requests/s | mean (ms) | CPU µs/request | busy % | core % | load core % "
              "| RSS (KiB) |" + extra_head)
            p("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if grpc else ""))
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    extra = f" {cell(r, 'ok')} | {cell(r, 'backend')} |" if grpc else ""
                    if t in unsupported:
                        p(f"| {t} | unsupported (no successful {scen} response) | – | – | – | – | – "
                          f"| {cell(r, 'rss')} |" + extra)
                        continue
                    p(f"| {name(t)} | {cell(r, 'rps')} | {cell(r, 'mean', 3)} | {cell(r, 'cpu', 1)} "
                      f"| {busy_cells(t)} | {cell(r, 'rss')} |" + extra)
                na_row(t, 9 if grpc else 7)
            for t in unsupported:
                meds.pop(t, None)
            if "ringway" in meds:
                m = meds["ringway"]
                cells = [ratio(m.get(k), best_peer(meds, k, k == "rps")) for k in ("rps", "mean", "cpu")]
                p("| ringway / best peer | " + " | ".join(cells) + " | | | | "
                  + ratio(m.get("rss"), best_peer(meds, "rss", False)) + " |" + (" | |" if grpc else ""))
            show_paired({t: r for t, r in byrep.items() if t not in unsupported},
                        "cpu", "CPU µs/request")
            p("\nh2load prints no percentiles: mean is its mean time per request. requests/s "
              "counts 2xx responses only.")
            if scen == "h2tls":
                p("\nh2load offers h2 by ALPN; TLS version and cipher suite as negotiated by "
                  "`openssl s_client` (the same OpenSSL as h2load) are in the notes.")
            if grpc:
                p("\nbaseline = h2load straight to the backend's gRPC server (its busy % is the "
                  "backend's). Every call is a POST "
                  "of one framed message with `content-type: application/grpc`; before measuring, "
                  "one call through each proxy must end with `grpc-status: 0` in the trailers "
                  "(nghttp), else the proxy is n/a. calls at backend = the backend's request "
                  "counter (stub_status) over the measured run; requests/s and CPU count at most "
                  "that many.")
        else:
            p("| target | requests/s | p50 (ms) | p99 (ms) | CPU µs/request | busy % | core % "
              "| load core % | RSS (KiB) |")
            p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t in rows:
                    r = rows[t]
                    p(f"| {name(t)} | {cell(r, 'rps')} | {cell(r, 'p50', 3)} | {cell(r, 'p99', 3)} "
                      f"| {cell(r, 'cpu', 1)} | {busy_cells(t)} | {cell(r, 'rss')} |")
                na_row(t, 8)
            if "ringway" in meds:
                m = meds["ringway"]
                cells = [ratio(m.get(k), best_peer(meds, k, k == "rps")) for k in ("rps", "p50", "p99", "cpu")]
                p("| ringway / best peer | " + " | ".join(cells) + " | | | | "
                  + ratio(m.get("rss"), best_peer(meds, "rss", False)) + " |")
            for key, what in (("cpu", "CPU µs/request"), ("p99", "p99")):
                show_paired(byrep, key, what)
            if "baseline" in rows:
                p("\nbaseline = wrk straight to the backend; its CPU and busy % are the backend's own.")
            if scen == "https":
                p("\nwrk offers no ALPN and speaks HTTP/1.1; each proxy forwards plaintext HTTP/1.1 "
                  "to the backend. TLS version and cipher suite as negotiated by `openssl s_client` "
                  "(the same OpenSSL as wrk) are in the notes. The TLS handshakes happen once per "
                  "connection, in the warm-up and at the start of the run.")
        if scen_notes:
            p("\nNotes: " + note_text(scen_notes))
        p("")

    pin = read("pinning.txt")
    if pin:
        p("## Thread CPU affinity (from /proc, after start)\n")
        p("```\n" + pin + "\n```\n")
    p("## Commands\n")
    p("Configs: `bench/configs/` (ringway.toml, nginx.conf, haproxy.cfg, envoy.yaml, "
      "backend-nginx.conf), templates rendered into the work directory (`conf/`: @WORK@ = the "
      "work directory, which holds the TLS certificate, @WORKERS@, @PROXY_CPUS@, "
      "@NGINX_AFFINITY@); the rendered copies are kept with the raw logs. The commands of the "
      "first run (the others repeat them):\n")
    p("```\n" + read("commands.txt") + "\n```")
    if args.raw:
        p(f"\nRaw outputs and logs: `{os.path.relpath(args.raw, os.getcwd())}` (not committed).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
