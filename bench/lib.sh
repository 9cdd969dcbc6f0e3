# bench/lib.sh — the harness shared by bench/tables.sh, bench/run.sh and
# bench/ws.sh: CPU pinning (server on cpu0, load generator on cpu1), a temporary folder,
# stopping children, free ports, a process's CPU ticks and medians.
# Source it after setting BENCH (the script's name, for messages).
# Sets CLK_TCK NPROC NOTES PIN_LOAD PIN_SERVER PIN_TEXT LINEBUF TMP
# SERVER_PID LOAD_PID; installs the EXIT/INT/TERM traps.
# shellcheck shell=bash
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
NOTES=()

# CPU pinning: server on cpu0, load generator on cpu1 (NF_BENCH_SERVER_CPU,
# NF_BENCH_LOAD_CPU to change them).
SERVER_CPU=${NF_BENCH_SERVER_CPU:-0}
LOAD_CPU=${NF_BENCH_LOAD_CPU:-1}
PIN_LOAD=()
PIN_SERVER=()
if command -v taskset >/dev/null 2>&1 && [ "$NPROC" -ge 2 ]; then
    PIN_LOAD=(taskset -c "$LOAD_CPU")
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_TEXT="server pinned to cpu$SERVER_CPU, load generator to cpu$LOAD_CPU"
else
    PIN_TEXT="NOT pinned (need taskset and >= 2 CPUs): load generator and server share CPUs"
    NOTES+=("no CPU pinning: numbers are noisier and CPU/msg is less meaningful")
fi
# Line-buffer the servers' stdout so the 'listening on' line shows up at once.
LINEBUF=()
command -v stdbuf >/dev/null 2>&1 && LINEBUF=(stdbuf -oL)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-$BENCH.XXXXXX")
SERVER_PID=""
LOAD_PID=""

# A child that exited stays a zombie until waited for, so kill -0 is not enough.
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st:0:1}" != "Z" ]
}

# Stop a child: SIGTERM, wait up to 3 s, then SIGKILL.  Sets STOP_RC.
stop_pid() {
    local pid=$1 i
    STOP_RC=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 30; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "$BENCH: pid $pid did not exit after SIGTERM, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    STOP_RC=$?
}

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    trap - EXIT INT TERM
    [ -n "$LOAD_PID" ] && stop_pid "$LOAD_PID"
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
    else
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
    fi
}

next_port() {
    local tries=0
    while port_in_use "$PORT"; do
        PORT=$((PORT + 1))
        tries=$((tries + 1))
        [ $tries -lt 1000 ] || { echo "$BENCH: no free port found" >&2; exit 2; }
    done
    FREE_PORT=$PORT
    PORT=$((PORT + 1))
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() {
    local st f
    st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo ""; return 1; }
    st=${st##*) }            # drop "pid (comm) "; st now starts at field 3
    read -r -a f <<<"$st"
    echo $((f[11] + f[12]))
}

# Voluntary context switches of all the threads of a process: how many times
# it went to sleep (each wake-up of a server handles msgs/wakeups messages).
wakeups() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
              else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
