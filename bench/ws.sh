#!/usr/bin/env bash
# netframe WebSocket echo benchmark (issue 6): netframe's ws_echo_server
# (io_uring and epoll) vs an echo server on libwebsockets (bench/lws_echo.c)
# vs Node's ws (bench/ws_echo.js), without and with permessage-deflate.
#
# usage: bench/ws.sh BUILD_DIR [SECONDS_PER_RUN (default 3)] [REPEATS (default 3)]
#
# Environment (optional):
#   NF_BENCH_WARMUP     warmup seconds per run (default 1)
#   NF_BENCH_BASE_PORT  first port to try (default 18001)
#   NF_WS_CALLGRIND=0   skip the instruction counts (valgrind --tool=callgrind)
#   NF_WS_IDLE=0        skip the idle-memory measurement
#
# For each scenario (64 B text messages on 50 connections, 16 KiB on 10;
# each without and with permessage-deflate) every repeat starts each server
# pinned to cpu0 and runs nf_ws_loadgen pinned to cpu1 (lib.sh). Server CPU per message
# = utime+stime from /proc/PID/stat over the measuring window / messages.
# Then (unless NF_WS_CALLGRIND=0) user-space instructions per message of
# netframe and libwebsockets under callgrind: two runs of N and 3N messages,
# (Ir(3N) - Ir(N)) / 2N, so start-up and handshakes cancel out: a second,
# repeatable ranking on a shared machine. Then the user-space memory of idle
# connections after the handshake (RSS growth of the server / connections).
#
# Loopback only. Every step is bounded; all servers are stopped on exit.
# Exit status: 0 ok, 1 a run failed, 2 usage error / load generator missing.

set -u -o pipefail

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS_PER_RUN (default 3)] [REPEATS (default 3)]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
BUILD_DIR=${1%/}
SECS=${2:-3}
REPEATS=${3:-3}
WARMUP=${NF_BENCH_WARMUP:-1}
PORT=${NF_BENCH_BASE_PORT:-18001}
HERE=$(cd "$(dirname "$0")" && pwd)

is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN { exit !(x > 0) }'; }
is_num "$SECS" || { echo "ws.sh: SECONDS_PER_RUN must be a positive number" >&2; usage; }
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || { echo "ws.sh: REPEATS must be a positive integer" >&2; usage; }

LOADGEN=$BUILD_DIR/bench/nf_ws_loadgen
if [ ! -x "$LOADGEN" ]; then
    echo "ws.sh: $LOADGEN not found; build first (make build)" >&2
    exit 2
fi

BENCH=ws.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# --- what to compare ---------------------------------------------------------
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SRV_NAMES=(netframe-uring netframe-epoll libwebsockets node-ws)
# 64 KiB read buffers for netframe, as lws_echo.c gives libwebsockets a 64 KiB
# rx buffer: a 16 KiB frame then arrives in one buffer and is echoed without
# being joined by a copy first.
SRV_CMDS=("$BUILD_DIR/examples/ws_echo_server --backend uring --read-buffer 65536"
          "$BUILD_DIR/examples/ws_echo_server --backend epoll --read-buffer 65536"
          "$BUILD_DIR/bench/nf_lws_echo"
          "node $HERE/ws_echo.js")
LWS=2 # the reference: ratios are to libwebsockets

SC_NAMES=("64B x 50" "16KiB x 10" "64B x 50 deflate" "16KiB x 10 deflate")
SC_SIZE=(64 16384 64 16384)
SC_CONNS=(50 10 50 10)
SC_DEFL=("" "" --deflate --deflate)

SRV_OK=()
for s in "${!SRV_NAMES[@]}"; do
    bin=${SRV_CMDS[$s]%% *}
    if [ "$bin" = node ]; then
        if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
            NOTES+=("skipped node-ws: node/npm not found")
            continue
        fi
        if [ ! -f "$HERE/node_modules/ws/package.json" ]; then
            echo "ws.sh: installing npm ws@8 into bench/node_modules" >&2
            (cd "$HERE" && npm install --no-audit --no-fund --no-save --no-package-lock ws@8 >&2) ||
                { NOTES+=("skipped node-ws: npm install ws@8 failed"); continue; }
        fi
    elif [ ! -x "$bin" ]; then
        why="$bin not found"
        [ "$s" = "$LWS" ] && why="$why (libwebsockets-dev missing: make deps, then rebuild)"
        NOTES+=("skipped ${SRV_NAMES[$s]}: $why")
        echo "ws.sh: skipping ${SRV_NAMES[$s]}: $why" >&2
        continue
    fi
    SRV_OK+=("$s")
done

declare -A R_RATE R_P99 R_CPU R_RUNS R_COMP
FAILED=0
LG_WRAP=(timeout -k 5 "$(awk -v w="$WARMUP" -v s="$SECS" 'BEGIN { printf "%d", w + s + 30 }')")

# Starts server s with extra args; sets SERVER_PID and SPORT, or returns 1.
start_server() {
    local s=$1 i
    shift
    next_port
    SPORT=$FREE_PORT
    local -a cmd
    read -r -a cmd <<<"${SRV_CMDS[$s]}"
    : >"$TMP/server.out"
    "$@" "${cmd[@]}" --port "$SPORT" ${DEFL:+"$DEFL"} >"$TMP/server.out" 2>"$TMP/server.err" </dev/null &
    SERVER_PID=$!
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$TMP/server.out" 2>/dev/null && return 0
        alive "$SERVER_PID" || break
        sleep 0.1
    done
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    echo "ws.sh: ${SRV_NAMES[$s]} did not start:" >&2
    sed 's/^/    /' "$TMP/server.err" | head -20 >&2
    return 1
}

run_one() {
    local sc=$1 s=$2 rep=$3
    local name=${SRV_NAMES[$s]} key="$sc|$s" tag
    tag="[${SC_NAMES[$sc]}] rep $rep/$REPEATS $name"
    DEFL=${SC_DEFL[$sc]}
    if ! start_server "$s" "${PIN_SERVER[@]}"; then
        NOTES+=("$name failed to start in '${SC_NAMES[$sc]}' rep $rep")
        FAILED=1
        return
    fi
    "${LG_WRAP[@]}" "${PIN_LOAD[@]}" "$LOADGEN" --port "$SPORT" --size "${SC_SIZE[$sc]}" \
        --connections "${SC_CONNS[$sc]}" --seconds "$SECS" --warmup "$WARMUP" ${DEFL:+"$DEFL"} \
        >"$TMP/lg.out" 2>"$TMP/lg.err" </dev/null &
    LOAD_PID=$!
    sleep "$WARMUP"
    local c0 c1 rc
    c0=$(cpu_ticks "$SERVER_PID")
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=""
    c1=$(cpu_ticks "$SERVER_PID")
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    local line msgs="" rate="" p99="" errors="" comp="" zb=0 kv
    line=$(grep '^msgs=' "$TMP/lg.out" | tail -n 1)
    for kv in $line; do
        case $kv in
        msgs=*) msgs=${kv#*=} ;;
        rate=*) rate=${kv#*=} ;;
        p99_us=*) p99=${kv#*=} ;;
        errors=*) errors=${kv#*=} ;;
        compressed=*) comp=${kv#*=} ;;
        zbytes=*) zb=${kv#*=} ;;
        esac
    done
    if [ "$rc" -ne 0 ] || [ "$errors" != 0 ] || [ -z "$c0" ] || [ -z "$c1" ] || [ "${msgs:-0}" -eq 0 ]; then
        echo "ws.sh: $tag: failed (exit $rc): ${line:-no result line}" >&2
        sed 's/^/    /' "$TMP/lg.err" | head -10 >&2
        NOTES+=("FAILED: $name, '${SC_NAMES[$sc]}' rep $rep: exit $rc ${line:-no result line}")
        FAILED=1
        return
    fi
    local cpu
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$msgs" 'BEGIN { printf "%.4f", d * 1e6 / hz / m }')
    R_RATE[$key]="${R_RATE[$key]:-} $rate"
    R_P99[$key]="${R_P99[$key]:-} $p99"
    R_CPU[$key]="${R_CPU[$key]:-} $cpu"
    R_COMP[$key]=$(awk -v c="$comp" -v m="$msgs" -v z="$zb" -v sz="${SC_SIZE[$sc]}" \
        'BEGIN { r = c / m; if (r > 1) r = 1; if (c > 0) printf "%.0f%% / %.1f%%", 100 * r, 100 * z / (c * sz); else printf "0%% / -" }')
    R_RUNS[$key]=$((${R_RUNS[$key]:-0} + 1))
    echo "ws.sh: $tag: rate=$rate p99=${p99}us cpu/msg=${cpu}us compressed=$comp" >&2
}

LOADAVG=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
HEADER="# netframe WebSocket echo bench: date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) nproc=$NPROC seconds=$SECS repeats=$REPEATS warmup=$WARMUP loadavg=$LOADAVG"
echo "$HEADER" >&2
for sc in "${!SC_NAMES[@]}"; do
    for ((rep = 1; rep <= REPEATS; rep++)); do
        for s in "${SRV_OK[@]}"; do
            run_one "$sc" "$s" "$rep"
        done
    done
done

# --- callgrind: user-space instructions per message ---------------------------
declare -A R_IR
IR_N=(2000 400 400 100) # messages per scenario in the short run (the long one: 3x)
ir_total() { # callgrind output file -> total Ir
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}
if [ "${NF_WS_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
    for sc in "${!SC_NAMES[@]}"; do
        for s in 0 "$LWS"; do
            [[ " ${SRV_OK[*]} " == *" $s "* ]] || continue
            DEFL=${SC_DEFL[$sc]}
            irs=()
            for mult in 1 3; do
                n=$((IR_N[sc] * mult))
                rm -f "$TMP"/cg.out*
                if ! start_server "$s" valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" ; then
                    FAILED=1
                    continue 2
                fi
                if ! timeout 300 "$LOADGEN" --port "$SPORT" --size "${SC_SIZE[$sc]}" --connections "${SC_CONNS[$sc]}" \
                    --messages "$n" ${DEFL:+"$DEFL"} >"$TMP/lg.out" 2>"$TMP/lg.err"; then
                    NOTES+=("callgrind run failed: ${SRV_NAMES[$s]} '${SC_NAMES[$sc]}': $(cat "$TMP/lg.out" "$TMP/lg.err" | head -3)")
                    FAILED=1
                fi
                # dump the counters now (the server may take long to exit
                # under valgrind), then stop it
                callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
                for ((i = 0; i < 100; i++)); do ls "$TMP"/cg.out.* >/dev/null 2>&1 && break; sleep 0.1; done
                kill -KILL "$SERVER_PID" 2>/dev/null
                wait "$SERVER_PID" 2>/dev/null
                SERVER_PID=""
                f=$(ls "$TMP"/cg.out.* 2>/dev/null | head -n 1)
                irs+=("$( [ -n "$f" ] && ir_total "$f")")
            done
            if [ ${#irs[@]} -eq 2 ] && [ -n "${irs[0]}" ] && [ -n "${irs[1]}" ]; then
                R_IR["$sc|$s"]=$(awk -v a="${irs[0]}" -v b="${irs[1]}" -v n="${IR_N[sc]}" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }')
                echo "ws.sh: callgrind [${SC_NAMES[$sc]}] ${SRV_NAMES[$s]}: Ir ${irs[0]} / ${irs[1]} -> ${R_IR["$sc|$s"]} per message" >&2
            fi
        done
    done
else
    NOTES+=("instruction counts skipped (NF_WS_CALLGRIND=0 or no valgrind)")
fi

# --- idle memory per connection -------------------------------------------------
declare -A R_IDLE
IDLE_N=1000
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
if [ "${NF_WS_IDLE:-1}" != 0 ]; then
    DEFL=""
    for s in "${SRV_OK[@]}"; do
        start_server "$s" || { FAILED=1; continue; }
        # warm the server's allocator with one short round first
        "$LOADGEN" --port "$SPORT" --connections 10 --messages 100 >/dev/null 2>&1
        sleep 0.3
        r0=$(rss_kb "$SERVER_PID")
        "$LOADGEN" --port "$SPORT" --connections "$IDLE_N" --idle --seconds 3 >"$TMP/idle.out" 2>&1 &
        LOAD_PID=$!
        for ((i = 0; i < 100; i++)); do grep -q ready "$TMP/idle.out" && break; sleep 0.1; done
        sleep 1
        r1=$(rss_kb "$SERVER_PID")
        wait "$LOAD_PID"
        LOAD_PID=""
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        if grep -q ready "$TMP/idle.out" && [ -n "$r0" ] && [ -n "$r1" ]; then
            R_IDLE[$s]=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_N" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
        else
            NOTES+=("idle memory: ${SRV_NAMES[$s]} failed: $(head -2 "$TMP/idle.out")")
        fi
    done
fi

# --- report -------------------------------------------------------------------
ROWS="$TMP/rows.tsv"
printf 'scenario\tserver\tmsgs/s\tp99 us\tserver CPU us/msg\tCPU vs lws\tuser Ir/msg\tIr vs lws\tcompressed: replies / size\n' >"$ROWS"
for sc in "${!SC_NAMES[@]}"; do
    base_cpu=""
    # shellcheck disable=SC2086
    [ -n "${R_RUNS[$sc|$LWS]:-}" ] && base_cpu=$(median ${R_CPU[$sc|$LWS]})
    base_ir=${R_IR[$sc|$LWS]:-}
    : >"$TMP/sc.tsv"
    for s in "${SRV_OK[@]}"; do
        key="$sc|$s"
        [ -n "${R_RUNS[$key]:-}" ] || continue
        # shellcheck disable=SC2086
        {
            rate=$(median ${R_RATE[$key]})
            p99=$(median ${R_P99[$key]})
            cpu=$(median ${R_CPU[$key]})
        }
        ir=${R_IR[$key]:-}
        comp="-"
        [ -n "${SC_DEFL[$sc]}" ] && comp="${R_COMP[$key]}"
        awk -v OFS='\t' -v sc="${SC_NAMES[$sc]}" -v name="${SRV_NAMES[$s]}" -v rate="$rate" -v p99="$p99" \
            -v cpu="$cpu" -v bcpu="$base_cpu" -v ir="$ir" -v bir="$base_ir" -v comp="$comp" \
            -v runs="${R_RUNS[$key]}" -v reps="$REPEATS" '
            BEGIN {
                cr = (bcpu != "" && bcpu + 0 > 0) ? sprintf("%.2fx", cpu / bcpu) : "n/a"
                irs = ir != "" ? ir : "-"
                irr = (ir != "" && bir != "" && bir + 0 > 0) ? sprintf("%.2fx", ir / bir) : "-"
                if (runs + 0 < reps + 0) name = name " (" runs "/" reps " runs)"
                printf "%s\t%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%.6f\n", sc, name, rate, p99, cpu, cr, irs, irr, comp, cpu
            }' >>"$TMP/sc.tsv"
    done
    sort -t "$(printf '\t')" -k10,10g "$TMP/sc.tsv" | cut -f1-9 >>"$ROWS"
done

echo
echo "$HEADER"
echo "ranked by server CPU per message; $PIN_TEXT; the machine may be shared: see loadavg"
echo "(medians over $REPEATS repeats of ${SECS}s after ${WARMUP}s warmup; CPU = server utime+stime from /proc, ${CLK_TCK} ticks/s;"
echo " Ir = user-space instructions per message under callgrind, (Ir(3N) - Ir(N)) / 2N, one run each)"
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

if [ ${#R_IDLE[@]} -gt 0 ]; then
    echo
    echo "idle WebSocket connections after the handshake ($IDLE_N, RSS growth of the server / connections):"
    for s in "${SRV_OK[@]}"; do
        [ -n "${R_IDLE[$s]:-}" ] && printf '  %-16s %6s bytes per connection\n' "${SRV_NAMES[$s]}" "${R_IDLE[$s]}"
    done
fi
exit $FAILED
