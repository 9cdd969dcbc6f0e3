#!/usr/bin/env bash
# netframe echo benchmark: compares netframe (io_uring and epoll backends,
# each in the block, poll and event completion modes) against a libuv echo
# server and a hand-written epoll echo server.
#
# usage: bench/run.sh BUILD_DIR [SECONDS_PER_RUN (default 2)] [REPEATS (default 3)]
#
# Environment (optional):
#   NF_BENCH_WARMUP     warmup seconds per run (default 1)
#   NF_BENCH_BASE_PORT  first port to try (default 17001)
#   NF_BENCH_ONLY       regex: only the servers whose name matches
#   NF_BENCH_SQPOLL=1   add netframe-uring-sqpoll (poll mode + SQPOLL; needs a
#                       core of its own for the kernel thread)
#   NF_BENCH_NOBOUND=1  add netframe-uring-nobound and netframe-epoll-nobound
#                       (echo_server --no-write-bound: the write-queue bound
#                       off, to see what the default bound costs)
#
# Loopback only.  Every step is bounded; all servers are stopped on exit.
# Exit status: 0 ok, 1 a load generator run reported errors (or a server that
# exists failed to start/serve), 2 usage error / load generator missing.

set -u -o pipefail

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS_PER_RUN (default 5)] [REPEATS (default 3)]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
BUILD_DIR=${1%/}
SECS=${2:-2}
REPEATS=${3:-3}
WARMUP=${NF_BENCH_WARMUP:-1}
PORT=${NF_BENCH_BASE_PORT:-17001}

is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN { exit !(x > 0) }'; }
is_num "$SECS" || { echo "run.sh: SECONDS_PER_RUN must be a positive number" >&2; usage; }
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: REPEATS must be a positive integer" >&2; usage; }
[[ $WARMUP =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "run.sh: NF_BENCH_WARMUP must be a number" >&2; exit 2; }
[[ $PORT =~ ^[0-9]+$ ]] || { echo "run.sh: NF_BENCH_BASE_PORT must be a number" >&2; exit 2; }

LOADGEN=$BUILD_DIR/bench/nf_loadgen
if [ ! -x "$LOADGEN" ]; then
    echo "run.sh: $LOADGEN not found; build first (e.g. cmake --build $BUILD_DIR)" >&2
    exit 2
fi

BENCH=run.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# --- what to compare ---------------------------------------------------------
ES=$BUILD_DIR/examples/echo_server
SRV_NAMES=(netframe-uring netframe-uring-poll netframe-uring-event netframe-epoll netframe-epoll-poll
           netframe-epoll-event libuv epoll-plain)
SRV_BINS=("$ES" "$ES" "$ES" "$ES" "$ES" "$ES" "$BUILD_DIR/bench/nf_uv_echo" "$BUILD_DIR/bench/nf_epoll_echo")
SRV_ARGS=("--backend uring --mode block" "--backend uring --mode poll" "--backend uring --mode event"
          "--backend epoll --mode block" "--backend epoll --mode poll" "--backend epoll --mode event" "" "")
if [ "${NF_BENCH_SQPOLL:-0}" = 1 ]; then
    SRV_NAMES+=(netframe-uring-sqpoll)
    SRV_BINS+=("$ES")
    SRV_ARGS+=("--backend uring --mode poll --sqpoll")
fi
if [ "${NF_BENCH_NOBOUND:-0}" = 1 ]; then
    SRV_NAMES+=(netframe-uring-nobound netframe-epoll-nobound)
    SRV_BINS+=("$ES" "$ES")
    SRV_ARGS+=("--backend uring --mode block --no-write-bound" "--backend epoll --mode block --no-write-bound")
fi

# The ping-pong (one connection, one message at a time) compares latency:
# poll mode against block mode, with libuv for reference.
SC_NAMES=("64B x 50 conns" "16KiB x 10 conns" "64B x 1 ping-pong")
SC_SIZE=(64 16384 64)
SC_CONNS=(50 10 1)
SC_ONLY=("" "" '^(netframe-(uring|epoll)(-poll)?|libuv)$')

SRV_OK=()
for s in "${!SRV_NAMES[@]}"; do
    if [ -n "${NF_BENCH_ONLY:-}" ] && ! [[ ${SRV_NAMES[$s]} =~ $NF_BENCH_ONLY ]]; then
        continue
    fi
    if [ -x "${SRV_BINS[$s]}" ]; then
        SRV_OK+=("$s")
    else
        NOTES+=("skipped ${SRV_NAMES[$s]}: ${SRV_BINS[$s]} not found")
        echo "run.sh: skipping ${SRV_NAMES[$s]}: ${SRV_BINS[$s]} not found" >&2
    fi
done
if [ ${#SRV_OK[@]} -eq 0 ]; then
    echo "run.sh: no server binaries found under $BUILD_DIR" >&2
    exit 2
fi

declare -A R_RATE R_P50 R_P99 R_P999 R_CPU R_RUNS
FAILED=0
# Hard bound on one load generator run (it stops by itself after warmup+secs).
LG_WRAP=()
if command -v timeout >/dev/null 2>&1; then
    LG_WRAP=(timeout -k 5 "$(awk -v w="$WARMUP" -v s="$SECS" 'BEGIN { printf "%d", w + s + 30 }')")
fi

# Run one server under one scenario once; record metrics.
run_one() {
    local sc=$1 s=$2 rep=$3
    local name=${SRV_NAMES[$s]} key="$sc|$s" tag i ready=0
    tag="[${SC_NAMES[$sc]}] rep $rep/$REPEATS $name"
    next_port
    local port=$FREE_PORT
    local -a extra=()
    [ -n "${SRV_ARGS[$s]}" ] && read -r -a extra <<<"${SRV_ARGS[$s]}"

    : >"$TMP/server.out"
    : >"$TMP/server.err"
    "${PIN_SERVER[@]}" "${LINEBUF[@]}" "${SRV_BINS[$s]}" --port "$port" "${extra[@]}" \
        >"$TMP/server.out" 2>"$TMP/server.err" </dev/null &
    SERVER_PID=$!

    for ((i = 0; i < 50; i++)); do
        if grep -q 'listening on' "$TMP/server.out" "$TMP/server.err" 2>/dev/null; then
            ready=1
            break
        fi
        alive "$SERVER_PID" || break
        sleep 0.1
    done
    if [ $ready -eq 0 ]; then
        local why="did not print 'listening on' within 5 s"
        alive "$SERVER_PID" || why="exited before printing 'listening on'"
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        [[ $why == exited* ]] && why="$why (status $STOP_RC)"
        echo "run.sh: $tag: server $why; stderr:" >&2
        sed 's/^/    /' "$TMP/server.err" | head -20 >&2
        NOTES+=("$name failed to start in scenario '${SC_NAMES[$sc]}' rep $rep: $why")
        FAILED=1
        return
    fi

    "${LG_WRAP[@]}" "${PIN_LOAD[@]}" "$LOADGEN" \
        --port "$port" --size "${SC_SIZE[$sc]}" --connections "${SC_CONNS[$sc]}" \
        --seconds "$SECS" --warmup "$WARMUP" >"$TMP/lg.out" 2>"$TMP/lg.err" </dev/null &
    LOAD_PID=$!
    sleep "$WARMUP"
    local c0 c1 rc
    c0=$(cpu_ticks "$SERVER_PID")
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=""
    c1=$(cpu_ticks "$SERVER_PID")
    local server_died=0
    alive "$SERVER_PID" || server_died=1

    stop_pid "$SERVER_PID"
    SERVER_PID=""
    if [ $server_died -eq 1 ]; then
        echo "run.sh: $tag: server exited during the run (status $STOP_RC)" >&2
        NOTES+=("$name exited during scenario '${SC_NAMES[$sc]}' rep $rep (status $STOP_RC)")
        FAILED=1
    elif [ "$STOP_RC" -ne 0 ] && [ "$STOP_RC" -ne 143 ]; then
        NOTES+=("$name exit status $STOP_RC on SIGTERM (scenario '${SC_NAMES[$sc]}' rep $rep)")
    fi

    local line msgs="" secs="" rate="" p50="" p99="" p999="" errors="" kv
    line=$(grep '^msgs=' "$TMP/lg.out" | tail -n 1)
    for kv in $line; do
        case $kv in
        msgs=*) msgs=${kv#*=} ;;
        secs=*) secs=${kv#*=} ;;
        rate=*) rate=${kv#*=} ;;
        p50_us=*) p50=${kv#*=} ;;
        p99_us=*) p99=${kv#*=} ;;
        p999_us=*) p999=${kv#*=} ;;
        errors=*) errors=${kv#*=} ;;
        esac
    done
    if [ "$rc" -ne 0 ] || [ -z "$errors" ] || [ "$errors" != 0 ]; then
        echo "run.sh: $tag: load generator failed (exit $rc): ${line:-no result line}" >&2
        sed 's/^/    /' "$TMP/lg.err" | head -20 >&2
        NOTES+=("LOADGEN ERRORS: $name, scenario '${SC_NAMES[$sc]}' rep $rep: exit $rc ${line:-no result line}")
        FAILED=1
        return
    fi
    if [ -z "$c0" ] || [ -z "$c1" ] || [ "$msgs" -eq 0 ]; then
        NOTES+=("$name: no CPU sample in scenario '${SC_NAMES[$sc]}' rep $rep")
        FAILED=1
        return
    fi
    local cpu
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$msgs" 'BEGIN { printf "%.4f", d * 1e6 / hz / m }')
    R_RATE[$key]="${R_RATE[$key]:-} $rate"
    R_P50[$key]="${R_P50[$key]:-} $p50"
    R_P99[$key]="${R_P99[$key]:-} $p99"
    R_P999[$key]="${R_P999[$key]:-} $p999"
    R_CPU[$key]="${R_CPU[$key]:-} $cpu"
    R_RUNS[$key]=$(( ${R_RUNS[$key]:-0} + 1 ))
    echo "run.sh: $tag: rate=$rate p50=${p50}us p99=${p99}us p99.9=${p999}us cpu/msg=${cpu}us (ticks $((c1 - c0)), secs $secs)" >&2
}

LOADAVG=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
HEADER="# netframe echo bench: date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) nproc=$NPROC seconds=$SECS repeats=$REPEATS warmup=$WARMUP loadavg=$LOADAVG"
echo "$HEADER" >&2

for sc in "${!SC_NAMES[@]}"; do
    for ((rep = 1; rep <= REPEATS; rep++)); do
        for s in "${SRV_OK[@]}"; do
            [ -n "${SC_ONLY[$sc]}" ] && ! [[ ${SRV_NAMES[$s]} =~ ${SC_ONLY[$sc]} ]] && continue
            run_one "$sc" "$s" "$rep"
        done
    done
done

# --- report -------------------------------------------------------------------
LIBUV=6 # index of libuv in SRV_NAMES
ROWS="$TMP/rows.tsv"
printf 'scenario\tserver\tmsgs/s\tp50 us\tp99 us\tp99.9 us\tserver CPU us/msg\tCPU/msg vs libuv\tmsgs/s vs libuv\n' >"$ROWS"
for sc in "${!SC_NAMES[@]}"; do
    base_cpu=""
    base_rate=""
    if [ -n "${R_RUNS[$sc|$LIBUV]:-}" ]; then
        # shellcheck disable=SC2086
        base_cpu=$(median ${R_CPU[$sc|$LIBUV]})
        # shellcheck disable=SC2086
        base_rate=$(median ${R_RATE[$sc|$LIBUV]})
    fi
    for s in "${SRV_OK[@]}"; do
        key="$sc|$s"
        [ -n "${R_RUNS[$key]:-}" ] || continue
        # shellcheck disable=SC2086
        {
            rate=$(median ${R_RATE[$key]})
            p50=$(median ${R_P50[$key]})
            p99=$(median ${R_P99[$key]})
            p999=$(median ${R_P999[$key]})
            cpu=$(median ${R_CPU[$key]})
        }
        awk -v OFS='\t' -v sc="${SC_NAMES[$sc]}" -v name="${SRV_NAMES[$s]}" \
            -v rate="$rate" -v p50="$p50" -v p99="$p99" -v p999="$p999" -v cpu="$cpu" \
            -v bcpu="$base_cpu" -v brate="$base_rate" -v runs="${R_RUNS[$key]}" -v reps="$REPEATS" '
            BEGIN {
                cr = (bcpu != "" && bcpu + 0 > 0) ? sprintf("%.2fx", cpu / bcpu) : "n/a"
                rr = (brate != "" && brate + 0 > 0) ? sprintf("%.2fx", rate / brate) : "n/a"
                if (runs + 0 < reps + 0) name = name " (" runs "/" reps " runs)"
                printf "%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.2f\t%s\t%s\t%.6f\n", sc, name, rate, p50, p99, p999, cpu, cr, rr, cpu
            }' >>"$TMP/sc$sc.tsv"
    done
    # rank by server CPU per message (last, hidden column), lowest first
    if [ -s "$TMP/sc$sc.tsv" ]; then
        sort -t "$(printf '\t')" -k10,10g "$TMP/sc$sc.tsv" | cut -f1-9 >>"$ROWS"
    fi
done

echo
echo "$HEADER"
echo "ranked by server CPU per message; $PIN_TEXT"
echo "(a poll-mode server spins: its CPU per message is its whole core divided by the messages, the price of the mode)"
echo "(medians over $REPEATS repeats of ${SECS}s after ${WARMUP}s warmup; CPU = server utime+stime from /proc, ${CLK_TCK} ticks/s)"
echo
awk -F'\t' '
    { n = NR; nf = NF; for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END {
        for (r = 1; r <= n; r++) {
            line = "|"
            for (i = 1; i <= nf; i++) {
                fmt = (i <= 2 || r == 1) ? " %-" w[i] "s |" : " %" w[i] "s |"
                line = line sprintf(fmt, c[r, i])
            }
            print line
            if (r == 1) {
                sep = "|"
                for (i = 1; i <= nf; i++) {
                    d = ""
                    for (j = 0; j < w[i]; j++) d = d "-"
                    sep = sep ((i <= 2) ? " " d " |" : " " substr(d, 2) ": |")
                }
                print sep
            }
        }
    }' "$ROWS"
if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    for n in "${NOTES[@]}"; do echo "note: $n"; done
fi

exit $FAILED
