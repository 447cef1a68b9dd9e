#!/usr/bin/env bash
# Work per request: how many user-space instructions, syscalls and io_uring submissions one
# proxied request costs ringway, for a fixed number of requests (see bench/README.md).
#
#   bench/work_per_request.sh                      # HTTP/1.1 keep-alive and h2c, 20,000 requests each
#   RINGWAY_BIN=/path/to/ringway bench/work_per_request.sh      # another build (before/after)
#   SCENARIOS=h2c MEASURE=callgrind REQUESTS=5000 bench/work_per_request.sh
#   PROXY_CMD='nginx -p @WORK@ -c @CONF@/wpr-nginx.conf' SCENARIOS=h1 bench/work_per_request.sh
#
# Unlike requests/s or CPU time, these counts barely move with the load on the machine, so a
# before/after comparison is possible on a shared 2-core box. For each scenario:
#
# - callgrind: ringway runs under `valgrind --tool=callgrind`; after a warm-up run (pools
#   filled, code paths translated) the counters are zeroed (`callgrind_control -z`), h2load sends
#   exactly REQUESTS requests, the counters are dumped (`callgrind_control -d`). Then the same for
#   IDLE_SECS seconds without traffic: the housekeeping rate (timers, allocator purge) times the
#   run's duration is subtracted, so what is left is the work of the REQUESTS requests.
# - perf: ringway runs natively; the same warm-up, then `perf stat -p <ringway>` of syscalls,
#   io_uring_enter calls and io_uring submissions over another exact REQUESTS, and `perf record`
#   of io_uring:io_uring_submit_req over a third, counted by opcode. If perf or the tracepoints
#   are not usable here, the report says so and the callgrind figures stand alone.
#
# Each load step is count-bounded (h2load -n) and time-bounded (timeout). Every measured run
# must end with REQUESTS successes and REQUESTS requests at the backend, else the figure is
# marked. ringway gets one worker, pinned to PROXY_CPU; h2load and the backend run on LOAD_CPU.
# PROXY_CMD measures another proxy the same way (all its processes are counted).
# Traffic goes to 127.0.0.1 only; processes are stopped by process group on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
CONFIGS="$BENCH/configs"

# ---- knobs (environment) -----------------------------------------------------------------
RINGWAY_BIN="${RINGWAY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/ringway}"
RINGWAY_REV="${RINGWAY_REV:-}"      # revision the report names for the binary (default: below)
# Another proxy instead of ringway: a command line (split on spaces; @PORT@, @BACKEND_PORT@,
# @WORK@ and @CONF@ replaced; @CONF@ holds the rendered bench/configs/wpr-* templates) that runs
# it in the foreground, 1 worker, HTTP/1.1 (and h2c by prior knowledge, for SCENARIOS h2c) on
# 127.0.0.1:@PORT@, forwarding to 127.0.0.1:@BACKEND_PORT@ with keep-alive.
PROXY_CMD="${PROXY_CMD:-}"
REQUESTS="${REQUESTS:-20000}"       # measured requests per scenario and measurement
WARMUP_REQUESTS="${WARMUP_REQUESTS:-5000}"
SCENARIOS="${SCENARIOS:-h1 h2c}"    # h1: HTTP/1.1 keep-alive; h1_64k: the same, 64 KiB bodies; h2c: HTTP/2 cleartext (prior knowledge)
MEASURE="${MEASURE:-callgrind perf}"
H1_CONNS="${H1_CONNS:-16}"          # h2load --h1 -c (one request in flight per connection)
H2_CONNS="${H2_CONNS:-16}"          # h2load -c
H2_STREAMS="${H2_STREAMS:-32}"      # h2load -m
IDLE_SECS="${IDLE_SECS:-5}"         # idle interval measured under callgrind
IO_DRIVER="${IO_DRIVER:-io_uring}"  # RINGWAY_IO_DRIVER: io_uring (no silent fallback) or legacy
PROXY_CPU="${PROXY_CPU:-1}"         # one CPU each (numbers)
LOAD_CPU="${LOAD_CPU:-0}"
STEP_TIMEOUT="${STEP_TIMEOUT:-600}" # seconds for one load step (under valgrind ~50x slower)
MAX_RUNTIME="${MAX_RUNTIME:-3600}"  # seconds; the whole script is stopped after this
SKIP_INSTALL="${SKIP_INSTALL:-0}"
BACKEND_PORT="${BACKEND_PORT:-29581}"
PORT="${PORT:-29590}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
if [ -n "$PROXY_CMD" ]; then PROXY_NAME="${PROXY_CMD%% *}"; PROXY_NAME="${PROXY_NAME##*/}"; else PROXY_NAME=ringway; fi
OUT="${OUT:-}"                      # also write the report here (Markdown)
RAW="${RAW:-$BENCH/results/raw/wpr-$STAMP}"   # logs, callgrind dumps, perf output (git-ignored)

for v in REQUESTS WARMUP_REQUESTS H1_CONNS H2_CONNS H2_STREAMS IDLE_SECS STEP_TIMEOUT MAX_RUNTIME PROXY_CPU LOAD_CPU; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
[ "$REQUESTS" -gt 0 ] || { echo "REQUESTS must be > 0" >&2; exit 2; }

log() { printf '[wpr %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- process bookkeeping ------------------------------------------------------------------
STARTED=() # process-group ids of what we started (each runs in its own session)
WATCHDOG=""
LAST_PID=""
WORK=""

# start NAME CPU CMD...: CMD pinned to CPU in a new session (setsid execs in place, so $! is the
# process's own pid = its process-group id).
start() {
    local name="$1" cpu="$2"
    shift 2
    echo "taskset -c $cpu $*" >>"$WORK/commands.txt"
    setsid taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
}

# stop PGID [SECS]: TERM the process group, KILL it after SECS (default 5).
stop() {
    local pg="$1" secs="${2:-5}" i keep=() p
    if kill -TERM -- "-$pg" 2>/dev/null; then
        for ((i = 0; i < secs * 10; i++)); do
            kill -0 -- "-$pg" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pg" 2>/dev/null || true
        wait "$pg" 2>/dev/null || true
    fi
    for p in "${STARTED[@]}"; do [ "$p" = "$pg" ] || keep+=("$p"); done
    STARTED=("${keep[@]}")
}

cleanup() {
    local pg
    for pg in "${STARTED[@]}"; do stop "$pg"; done
    [ -z "$WATCHDOG" ] || kill -TERM -- "-$WATCHDOG" 2>/dev/null || true
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        mkdir -p "$RAW"
        find "$WORK" -name "vgdb-*" -delete 2>/dev/null || true # callgrind_control's FIFOs, shared memory
        cp -rf "$WORK"/. "$RAW"/ 2>/dev/null || true
        rm -rf "$WORK"
        log "raw logs: $RAW"
    fi
}
trap cleanup EXIT
trap 'log "stopped by a signal (Ctrl-C, or MAX_RUNTIME=${MAX_RUNTIME}s reached)"; exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID SECS: until PORT accepts connections, or PID died.
wait_port() {
    local port="$1" pid="$2" i
    for ((i = 0; i < $3 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        port_open "$port" && return 0
        sleep 0.1
    done
    return 1
}

# foreign_listeners PORT PGID: pids outside process group PGID listening on PORT (ringway binds
# with SO_REUSEPORT, so another server on the port would silently take some connections).
foreign_listeners() {
    local p mine
    mine=" $(pgrep -g "$2" | tr '\n' ' ') "
    for p in $(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        [[ "$mine" == *" $p "* ]] || echo "$p"
    done
}

# ---- setup --------------------------------------------------------------------------------
install_tools() {
    local want=() t
    for t in nginx:nginx-light h2load:nghttp2-client valgrind:valgrind callgrind_control:valgrind \
        perf:linux-perf curl:curl taskset:util-linux python3:python3 pgrep:procps ss:iproute2; do
        command -v "${t%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${t%%:*}" ] || want+=("${t#*:}")
    done
    [ ${#want[@]} -gt 0 ] || return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "apt-get install ${want[*]}"
    $sudo apt-get update -qq || true
    # linux-perf may not exist for this distribution or kernel: the perf part is then skipped.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null ||
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]/linux-perf/}" >/dev/null
}

render() { # TEMPLATE OUT
    sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$PORT|g" \
        -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$1" >"$2"
}

BACKEND_PG=""
start_backend() {
    mkdir -p "$WORK/tmp" "$WORK/www"
    head -c 65536 /dev/zero | tr '\0' 'x' >"$WORK/www/64k"
    start backend "$LOAD_CPU" nginx -p "$WORK" -c "$WORK/conf/backend-nginx.conf"
    BACKEND_PG="$LAST_PID"
    wait_port "$BACKEND_PORT" "$BACKEND_PG" 15 || die "backend did not start: $(tail -3 "$WORK/backend.log" "$WORK/backend-error.log" 2>/dev/null)"
}

# backend_counts: "ACCEPTS REQUESTS", the backend's totals (stub_status; its own request is one
# of each). Accepted connections are the upstream connections ringway opened (h2load talks only
# to ringway); ringway's admin listener is not used, as under valgrind it answers only slowly.
backend_counts() {
    curl -fsS --max-time 10 "http://127.0.0.1:$BACKEND_PORT/bench-stub-status" | awk 'NR == 3 {print $1, $3}'
}

# Mimalloc options: ringway re-executes itself to set them when they are unset (engine/src/main.rs),
# which would leave valgrind and perf watching a process that is gone. Set them as ringway would.
export MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-100}"
export MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT:-0}"
export RINGWAY_IO_DRIVER="$IO_DRIVER"

# proxy_argv: the proxy's command line (PROXY_CMD, else ringway with one worker) into PROXY_ARGV.
PROXY_ARGV=()
proxy_argv() {
    if [ -n "$PROXY_CMD" ]; then
        local c="$PROXY_CMD"
        c="${c//@PORT@/$PORT}"
        c="${c//@BACKEND_PORT@/$BACKEND_PORT}"
        c="${c//@WORK@/$WORK}"
        c="${c//@CONF@/$WORK/conf}"
        read -ra PROXY_ARGV <<<"$c"
    else
        PROXY_ARGV=("$RINGWAY_BIN" --config "$WORK/conf/ringway.toml" --workers 1)
    fi
}

PROXY_PG=""
# start_proxy NAME [WRAPPER...]: the proxy on PROXY_CPU, under WRAPPER (valgrind).
start_proxy() {
    local name="$1"
    shift
    # The previous proxy's listening socket can outlive it for a moment: io_uring requests
    # still holding it (a pending accept) are released when the kernel tears the ring down.
    local i
    for ((i = 0; i < 100; i++)); do port_open "$PORT" || break; sleep 0.1; done
    ! port_open "$PORT" || die "127.0.0.1:$PORT is already in use"
    proxy_argv
    start "$name" "$PROXY_CPU" "$@" "${PROXY_ARGV[@]}"
    PROXY_PG="$LAST_PID"
    # Under valgrind startup takes a few seconds.
    wait_port "$PORT" "$PROXY_PG" 120 || die "proxy ($name) did not start: $(tail -5 "$WORK/$name.log")"
    curl -fsS -o /dev/null --max-time 60 "http://127.0.0.1:$PORT/" || die "proxy ($name) does not proxy GET /"
    if [ -z "$PROXY_CMD" ] && [ "$IO_DRIVER" = io_uring ] && ! grep -q "io_uring driver" "$WORK/$name.log"; then
        die "ringway ($name) is not on the io_uring driver: $(grep -m1 'driver\|uring' "$WORK/$name.log")"
    fi
    local others
    others="$(foreign_listeners "$PORT" "$PROXY_PG" | tr '\n' ' ')"
    [ -z "$others" ] || die "pid(s) $others also listen on 127.0.0.1:$PORT"
}

# load_cmd SCENARIO N: the h2load command line for N requests, into the array LOAD.
LOAD=()
load_cmd() {
    local url="http://127.0.0.1:$PORT/"
    case "$1" in
        h1) LOAD=(h2load --h1 -t1 -n "$2" -c "$H1_CONNS" -m 1 "$url") ;;
        h1_64k) LOAD=(h2load --h1 -t1 -n "$2" -c "$H1_CONNS" -m 1 "${url}64k") ;;
        h2c) LOAD=(h2load -t1 -n "$2" -c "$H2_CONNS" -m "$H2_STREAMS" "$url") ;;
        *) die "unknown scenario $1 (h1, h1_64k, h2c)" ;;
    esac
}

# run_load SCENARIO N OUTFILE [PREFIX...]: exactly N requests through the proxy, bounded by
# STEP_TIMEOUT; PREFIX (perf stat/record) wraps h2load. Sets LOAD_OK (1 when h2load reported N
# 2xx responses and the backend received N requests), LOAD_SECS, LOAD_NOTE and LOAD_UPCX (upstream
# connections ringway opened during the run).
LOAD_OK=0
LOAD_SECS=0
LOAD_NOTE=""
LOAD_UPCX=0
run_load() {
    local scen="$1" n="$2" out="$3" a0 a1 b0 b1 t0 t1 ok2xx rc=0
    shift 3
    load_cmd "$scen" "$n"
    echo "$* taskset -c $LOAD_CPU ${LOAD[*]}" >>"$WORK/commands.txt"
    read -r a0 b0 < <(backend_counts) || die "cannot read the backend's stub_status"
    t0="$(date +%s.%N)"
    timeout "$STEP_TIMEOUT" "$@" taskset -c "$LOAD_CPU" "${LOAD[@]}" >"$out" 2>&1 || rc=$?
    t1="$(date +%s.%N)"
    read -r a1 b1 < <(backend_counts) || die "cannot read the backend's stub_status"
    LOAD_SECS="$(python3 -c "print(f'{$t1 - $t0:.2f}')")"
    LOAD_UPCX=$((a1 - a0 - 1))
    ok2xx="$(awk '/^status codes:/ {print $3; exit}' "$out")"
    LOAD_OK=1
    LOAD_NOTE=""
    [ "$rc" = 0 ] || { LOAD_OK=0; LOAD_NOTE+="load step exit $rc (124: STEP_TIMEOUT); "; }
    [ "${ok2xx:-0}" = "$n" ] || { LOAD_OK=0; LOAD_NOTE+="${ok2xx:-0} of $n 2xx; "; }
    [ $((b1 - b0 - 1)) = "$n" ] || { LOAD_OK=0; LOAD_NOTE+="backend got $((b1 - b0 - 1)) requests; "; }
    [ "$LOAD_OK" = 1 ] || log "warning: $scen: $LOAD_NOTE(see $(basename "$out"))"
}

# ---- results: results.tsv rows SCENARIO KEY VALUE, read by the report ----------------------
record() { printf '%s\t%s\t%s\n' "$@" >>"$WORK/results.tsv"; }

# callgrind_ir FILE: the Ir total of a callgrind dump.
callgrind_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# Callgrind's dumps and vgdb FIFOs live in $WORK/cg (world-writable: a proxy's workers may
# drop privileges). cg_pids: the proxy's processes that run under callgrind (ringway: one), by
# their executable, valgrind's callgrind-<arch> tool.
CG=""
cg_pids() {
    local p
    for p in $(pgrep -g "$PROXY_PG"); do
        [[ "$(readlink "/proc/$p/exe" 2>/dev/null)" != */callgrind-* ]] || echo "$p"
    done
}

count_files() { compgen -G "$1" | wc -l || true; } # GLOB

cg_control() { # ARG PID
    timeout 120 callgrind_control --vgdb-prefix="$CG/vgdb" "$1" "$2" >>"$WORK/callgrind_control.log" 2>&1 ||
        die "callgrind_control $1 $2 failed (see callgrind_control.log)"
}

# cg_zero: zero the counters of every callgrind process of the proxy.
cg_zero() {
    local p n=0
    for p in $(cg_pids); do cg_control -z "$p"; n=$((n + 1)); done
    [ "$n" -gt 0 ] || die "no process of the proxy runs under callgrind"
}

# cg_dump: dump every callgrind process's counters now; prints "IR FILE..." (IR summed).
cg_dump() {
    local p n before f total=0 files=()
    for p in $(cg_pids); do
        before="$(count_files "$CG/callgrind.out.$p.*")"
        cg_control -d "$p"
        for ((n = 0; n < 100; n++)); do
            [ "$(count_files "$CG/callgrind.out.$p.*")" -le "$before" ] || break
            sleep 0.1
        done
        f="$(find "$CG" -name "callgrind.out.$p.*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)"
        [ -n "$f" ] || die "no callgrind dump for pid $p"
        total=$((total + $(callgrind_ir "$f")))
        files+=("$(basename "$f")")
    done
    [ ${#files[@]} -gt 0 ] || die "no process of the proxy runs under callgrind"
    echo "$total ${files[*]}"
}

measure_callgrind() {
    local scen="$1" ir files idle_ir
    log "$scen: callgrind: $PROXY_NAME under valgrind, warm-up $WARMUP_REQUESTS requests"
    # Only the dumps' totals are read; all threads of a process are counted together (ringway:
    # the main thread, waiting for signals, and the worker). --trace-children: a proxy that
    # re-executes itself stays measured (ringway does not: the mimalloc variables are set).
    start_proxy "callgrind-$scen" valgrind --tool=callgrind --dump-instr=no --trace-children=yes \
        --vgdb-prefix="$CG/vgdb" --callgrind-out-file="$CG/callgrind.out.%p"
    run_load "$scen" "$WARMUP_REQUESTS" "$WORK/h2load-callgrind-$scen-warmup.txt"
    [ "$LOAD_OK" = 1 ] || record "$scen" note "callgrind warm-up: $LOAD_NOTE"
    cg_zero
    log "$scen: callgrind: $REQUESTS requests"
    run_load "$scen" "$REQUESTS" "$WORK/h2load-callgrind-$scen.txt"
    read -r ir files < <(cg_dump) || die "callgrind dump failed"
    record "$scen" cg_ok "$LOAD_OK"
    [ "$LOAD_OK" = 1 ] || record "$scen" note "callgrind run: $LOAD_NOTE"
    record "$scen" cg_ir "$ir"
    record "$scen" cg_secs "$LOAD_SECS"
    record "$scen" cg_dump "$files"
    record "$scen" cg_upcx "$LOAD_UPCX"
    log "$scen: callgrind: idle ${IDLE_SECS}s"
    cg_zero
    local t0 t1
    t0="$(date +%s.%N)"
    sleep "$IDLE_SECS"
    read -r idle_ir files < <(cg_dump) || die "callgrind dump failed"
    t1="$(date +%s.%N)"
    record "$scen" cg_idle_ir "$idle_ir"
    record "$scen" cg_idle_secs "$(python3 -c "print(f'{$t1 - $t0:.2f}')")"
    # Under valgrind ringway drains slowly (its signal thread rarely gets to run); the dumps are
    # taken, so give it 10 s, then KILL.
    stop "$PROXY_PG" 10
}

PERF_OK=""
perf_usable() {
    if [ -z "$PERF_OK" ]; then
        PERF_OK=0
        if command -v perf >/dev/null 2>&1 &&
            timeout 30 perf stat -x, -e io_uring:io_uring_submit_req,syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter \
                -- true >"$WORK/perf-probe.txt" 2>&1; then
            PERF_OK=1
        fi
    fi
    [ "$PERF_OK" = 1 ]
}

PERF_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req,io_uring:io_uring_complete

measure_perf() {
    local scen="$1" out
    if ! perf_usable; then
        record "$scen" note "perf not usable here: $(tail -2 "$WORK/perf-probe.txt" 2>/dev/null | tr '\n' ' ')"
        return 0
    fi
    log "$scen: perf: $PROXY_NAME native, warm-up $WARMUP_REQUESTS requests"
    start_proxy "perf-$scen"
    local pids
    pids="$(pgrep -g "$PROXY_PG" | paste -sd,)"
    run_load "$scen" "$WARMUP_REQUESTS" "$WORK/h2load-perf-$scen-warmup.txt"
    [ "$LOAD_OK" = 1 ] || record "$scen" note "perf warm-up: $LOAD_NOTE"
    log "$scen: perf stat: $REQUESTS requests"
    # perf stat -p counts the proxy's processes (all threads) while the command (h2load) runs.
    out="$WORK/perf-stat-$scen.csv"
    run_load "$scen" "$REQUESTS" "$WORK/h2load-perf-$scen.txt" \
        perf stat -x, -o "$out" -e "$PERF_EVENTS" -p "$pids" --
    record "$scen" perf_ok "$LOAD_OK"
    [ "$LOAD_OK" = 1 ] || record "$scen" note "perf stat run: $LOAD_NOTE"
    record "$scen" perf_secs "$LOAD_SECS"
    record "$scen" perf_upcx "$LOAD_UPCX"
    local ev v
    while IFS=, read -r v _ ev _; do
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        record "$scen" "perf:$ev" "$v"
    done <"$out"
    log "$scen: perf record io_uring:io_uring_submit_req: $REQUESTS requests"
    out="$WORK/perf-submit-$scen.data"
    run_load "$scen" "$REQUESTS" "$WORK/h2load-perf-record-$scen.txt" \
        perf record -q -e io_uring:io_uring_submit_req -p "$pids" -o "$out" --
    record "$scen" opcodes_ok "$LOAD_OK"
    # The trace line reads "... opcode READ, flags ..." (older kernels print a number).
    if timeout 120 perf script -i "$out" -F trace >"$WORK/perf-submit-$scen.txt" 2>"$WORK/perf-script-$scen.err"; then
        local op count
        while read -r count op; do
            record "$scen" "op:$op" "$count"
        done < <(grep -o 'opcode [A-Za-z0-9_]*' "$WORK/perf-submit-$scen.txt" | awk '{print $2}' | sort | uniq -c | sort -rn)
    else
        record "$scen" note "perf script failed: $(tail -1 "$WORK/perf-script-$scen.err")"
    fi
    stop "$PROXY_PG"
}

report() {
    python3 - "$WORK/results.tsv" "$REQUESTS" <<'PY'
import sys
from collections import defaultdict, OrderedDict

rows = OrderedDict()
notes = defaultdict(list)
for line in open(sys.argv[1]):
    scen, key, val = line.rstrip("\n").split("\t", 2)
    rows.setdefault(scen, OrderedDict())
    if key == "note":
        notes[scen].append(val)
    else:
        rows[scen][key] = val
n = int(sys.argv[2])
title = {"h1": "HTTP/1.1 keep-alive", "h1_64k": "HTTP/1.1 keep-alive, 64 KiB body", "h2c": "h2c"}

def f(x, d=1):
    return "n/a" if x is None else f"{x:,.{d}f}"

def num(r, k):
    v = r.get(k)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

print("| scenario | requests | instructions/request | syscalls/request | io_uring_enter/request | io_uring submits/request |")
print("|---|---|---|---|---|---|")
detail = []
for scen, r in rows.items():
    ir, idle, secs, isecs = (num(r, k) for k in ("cg_ir", "cg_idle_ir", "cg_secs", "cg_idle_secs"))
    per = None
    if ir is not None:
        idle_share = idle / isecs * secs if idle is not None and isecs else 0.0
        per = (ir - idle_share) / n
        mark = "" if r.get("cg_ok") == "1" else " (!)"
        up = f"; upstream connections opened during it: {r['cg_upcx']}" if "cg_upcx" in r else ""
        detail.append(f"- {title.get(scen, scen)}: callgrind Ir {int(ir):,} over {n:,} requests in {secs:.1f} s; "
                      f"idle {f(idle / isecs if idle is not None and isecs else None, 0)} Ir/s x {secs:.1f} s "
                      f"= {f(idle_share, 0)} subtracted ({idle_share / ir * 100 if ir else 0:.2f} %); "
                      f"raw {f(ir / n)} Ir/request{up}{mark}")
    sysc, enter, sub = (num(r, "perf:" + e) for e in ("raw_syscalls:sys_enter", "syscalls:sys_enter_io_uring_enter", "io_uring:io_uring_submit_req"))
    comp = num(r, "perf:io_uring:io_uring_complete")
    pmark = "" if r.get("perf_ok", "1") == "1" else " (!)"
    def pr(x):
        return "n/a" if x is None else f"{x / n:.3f}{pmark}"
    print(f"| {title.get(scen, scen)} | {n:,} | {f(per)}{'' if r.get('cg_ok', '1') == '1' else ' (!)'} | {pr(sysc)} | {pr(enter)} | {pr(sub)} |")
    if comp is not None:
        detail.append(f"- {title.get(scen, scen)}: perf stat over {r.get('perf_secs', '?')} s; io_uring completions/request {comp / n:.3f}; "
                      f"upstream connections opened during it: {r.get('perf_upcx', '?')}")
    ops = [(k[3:], int(v)) for k, v in r.items() if k.startswith("op:")]
    if ops:
        ops.sort(key=lambda kv: -kv[1])
        detail.append(f"- {title.get(scen, scen)}: io_uring submissions by opcode, per request: "
                      + ", ".join(f"{op} {c / n:.3f}" for op, c in ops)
                      + ("" if r.get("opcodes_ok", "1") == "1" else " (!)"))
print()
for d in detail:
    print(d)
for scen, ns in notes.items():
    for x in ns:
        print(f"- {title.get(scen, scen)}: note: {x}")
if any(r.get(k) not in (None, "1") for r in rows.values() for k in ("cg_ok", "perf_ok", "opcodes_ok")):
    print("- (!): that run did not end with exactly the requested number of 2xx responses and backend requests; see the notes")
PY
}

# ---- main ---------------------------------------------------------------------------------
main() {
    [ "$SKIP_INSTALL" = 1 ] || install_tools
    local t
    for t in nginx h2load curl taskset python3 ss; do
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "$t is missing"
    done
    [[ " $MEASURE " != *" callgrind "* ]] || { command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; } ||
        die "valgrind (callgrind_control) is missing"
    [ -n "$PROXY_CMD" ] || [ -x "$RINGWAY_BIN" ] ||
        die "no ringway binary at $RINGWAY_BIN (cargo build --release -p engine --bin ringway, or set RINGWAY_BIN)"
    ulimit -n 20000 2>/dev/null || true
    if [ "$(nproc)" -le "$PROXY_CPU" ] || [ "$(nproc)" -le "$LOAD_CPU" ]; then
        die "PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU: only $(nproc) CPUs"
    fi

    WORK="$(mktemp -d /tmp/ringway-wpr.XXXXXX)"
    chmod 755 "$WORK" # the nginx worker may run as nobody
    CG="$WORK/cg"
    mkdir -p "$WORK/conf" "$CG"
    chmod 1777 "$CG"
    : >"$WORK/results.tsv"
    : >"$WORK/commands.txt"
    local f
    for f in "$CONFIGS"/wpr-*; do render "$f" "$WORK/conf/${f##*/}"; done
    cp "$WORK/conf/wpr-ringway.toml" "$WORK/conf/ringway.toml"
    cp "$WORK/conf/wpr-backend-nginx.conf" "$WORK/conf/backend-nginx.conf"
    if [ -z "$PROXY_CMD" ]; then
        "$RINGWAY_BIN" --config "$WORK/conf/ringway.toml" --check >/dev/null || die "ringway --check refuses $WORK/conf/ringway.toml"
    fi
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    setsid bash -c 'sleep "$1" && kill -TERM "$2"' watchdog "$MAX_RUNTIME" $$ </dev/null >/dev/null 2>&1 &
    WATCHDOG=$!

    ! port_open "$BACKEND_PORT" || die "127.0.0.1:$BACKEND_PORT is already in use"
    start_backend

    local rev scen m
    # Default label: the checkout's last commit outside bench/ (what the binary is built from),
    # +dirty when files outside bench/ are modified. Set RINGWAY_REV for a binary built elsewhere.
    rev="${RINGWAY_REV:-$(git -C "$REPO" log -1 --format=%h -- . ':!bench' 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo '+dirty')}"
    for scen in $SCENARIOS; do
        load_cmd "$scen" "$REQUESTS" # rejects unknown scenarios early
        for m in $MEASURE; do
            case "$m" in
                callgrind) measure_callgrind "$scen" ;;
                perf) measure_perf "$scen" ;;
                *) die "unknown measurement $m (callgrind, perf)" ;;
            esac
        done
    done

    {
        echo "Work per request, \`bench/work_per_request.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        if [ -n "$PROXY_CMD" ]; then
            echo "- proxy: \`$PROXY_CMD\` on CPU $PROXY_CPU"
        else
            echo "- ringway: $RINGWAY_BIN ($("$RINGWAY_BIN" --version 2>&1 | head -1), git $rev, sha256 $(sha256sum "$RINGWAY_BIN" | cut -c1-12)), 1 worker on CPU $PROXY_CPU, RINGWAY_IO_DRIVER=$IO_DRIVER"
        fi
        echo "- load: $(h2load --version 2>&1 | head -1) on CPU $LOAD_CPU; h1: \`h2load --h1 -n $REQUESTS -c $H1_CONNS -m 1\`; h2c: \`h2load -n $REQUESTS -c $H2_CONNS -m $H2_STREAMS\`; each after a warm-up of $WARMUP_REQUESTS requests"
        echo "- backend: $(nginx -v 2>&1 | head -1), \`return 200\` (37 bytes) on CPU $LOAD_CPU"
        echo "- $(valgrind --version 2>/dev/null); $(perf --version 2>/dev/null || echo 'no perf'); $(uname -sr)"
        echo "- instructions/request: callgrind Ir (user space, all threads) from counters zeroed after the warm-up to a dump after the measured run, minus the idle rate (measured for ${IDLE_SECS} s after it) times the run's duration, divided by the requests; syscalls, io_uring_enter and io_uring submissions: \`perf stat -p\` over a separate native run of the same requests, divided by them (these depend on how many completions each ring entry reaps, so on timing: syscalls and io_uring_enter vary by tens of percent run to run, submissions by a few); opcodes: \`perf record -e io_uring:io_uring_submit_req\` over a third run"
        echo
        report
    } >"$WORK/report.md"
    cat "$WORK/report.md"
    if [ -n "$OUT" ]; then
        mkdir -p "$(dirname "$OUT")"
        cp "$WORK/report.md" "$OUT"
        log "wrote $OUT"
    fi
}

main "$@"
