#!/usr/bin/env bash
# netframe UDP echo benchmark (issue 8): 64-byte datagrams against
#   libuv        bench/udp_uv_echo.c (recvmmsg + uv_udp_try_send)
#   epoll-plain  bench/udp_epoll_echo.c (recvmmsg/sendmmsg, written here)
#   netframe     examples/udp_echo_server: io_uring block, io_uring poll, epoll block
# Two runs per server and repeat, with examples/udp_load on another core:
#   throughput: closed loop (4 flows x 64 in flight, sendmmsg/recvmmsg batches
#               of 32): echoed datagrams/s and the server's CPU time per
#               datagram (utime+stime from /proc/PID/stat over the run);
#   latency:    open loop at a fixed rate (NF_UDP_BENCH_RATE, default 20000/s):
#               round-trip p50 / p99.
# Prints one table of medians, with ratios against libuv.
#
# usage: bench/udp.sh BUILD_DIR [SECONDS (default 3)] [REPEATS (default 3)]
set -u -o pipefail
BUILD=${1:?usage: bench/udp.sh BUILD_DIR [SECONDS] [REPEATS]}
BUILD=${BUILD%/}
SECS=${2:-3}
REPS=${3:-3}
RATE=${NF_UDP_BENCH_RATE:-20000}
LOAD=$BUILD/examples/udp_load
NFSRV=$BUILD/examples/udp_echo_server
for b in "$LOAD" "$NFSRV" "$BUILD/bench/nf_udp_epoll_echo"; do
    [ -x "$b" ] || { echo "udp.sh: $b not built" >&2; exit 2; }
done
CLK=$(getconf CLK_TCK)
PIN_LOAD=() PIN_SRV=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_LOAD=(taskset -c 0) PIN_SRV=(taskset -c 1)
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-udp-bench.XXXXXX")
SRV_PID=
cleanup() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

declare -a NAMES CMDS
add() { NAMES+=("$1"); CMDS+=("$2"); }
[ -x "$BUILD/bench/nf_udp_uv_echo" ] && add libuv "$BUILD/bench/nf_udp_uv_echo --port 0"
add epoll-plain "$BUILD/bench/nf_udp_epoll_echo --port 0"
# --recv-size 2048 --recv-count 0: the library's defaults, which the figures in
# docs/udp.md were measured with (the example's own defaults receive 65,527-byte
# datagrams whole into 64 buffers; udp_load sends 64 bytes).
add nf-uring-block "$NFSRV --port 0 --backend uring --mode block --rcvbuf 4194304 --recv-size 2048 --recv-count 0"
add nf-uring-poll "$NFSRV --port 0 --backend uring --mode poll --rcvbuf 4194304 --recv-size 2048 --recv-count 0"
add nf-epoll-block "$NFSRV --port 0 --backend epoll --mode block --rcvbuf 4194304 --recv-size 2048 --recv-count 0"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

start_server() { # cmd -> sets SRV_PID, PORT
    : >"$TMP/out"
    "${PIN_SRV[@]}" stdbuf -oL $1 >"$TMP/out" 2>"$TMP/err" &
    SRV_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$TMP/out" && break
        sleep 0.05
    done
    PORT=$(grep -o 'listening on [^ ]*' "$TMP/out" | sed 's/.*://')
    [ -n "$PORT" ] || { echo "udp.sh: server did not start: $1" >&2; cat "$TMP/err" >&2; exit 1; }
}
stop_server() { kill -INT "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=; }
field() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

declare -A TPUT CPU P50 P99 LOSS
# Repeats are interleaved (round r runs every server once), so a change in the
# machine's load during the benchmark hits every server alike.
for r in $(seq "$REPS"); do
    for i in "${!NAMES[@]}"; do
        start_server "${CMDS[$i]}"
        c0=$(cpu_ticks "$SRV_PID")
        out=$("${PIN_LOAD[@]}" "$LOAD" --port "$PORT" --seconds "$SECS" --flows 4 --window 64 --batch 32 | grep RESULT)
        c1=$(cpu_ticks "$SRV_PID")
        echoed=$(echo "$out" | field echoed)
        eps=$(echo "$out" | field echoed_per_s)
        echo "$eps" >>"$TMP/t.$i"
        awk -v c=$((c1 - c0)) -v k="$CLK" -v n="$echoed" 'BEGIN { printf "%.3f\n", n ? c / k * 1e6 / n : 0 }' >>"$TMP/c.$i"
        out=$("${PIN_LOAD[@]}" "$LOAD" --port "$PORT" --seconds 2 --rate "$RATE" --flows 4 --batch 8 | grep RESULT)
        echo "$out" | field p50_us >>"$TMP/l50.$i"
        echo "$out" | field p99_us >>"$TMP/l99.$i"
        awk -v s="$(echo "$out" | field sent)" -v l="$(echo "$out" | field lost)" \
            'BEGIN { printf "%.2f\n", s ? 100 * l / s : 0 }' >>"$TMP/loss.$i"
        stop_server
    done
done
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    TPUT[$name]=$(median <"$TMP/t.$i")
    CPU[$name]=$(median <"$TMP/c.$i")
    P50[$name]=$(median <"$TMP/l50.$i")
    P99[$name]=$(median <"$TMP/l99.$i")
    LOSS[$name]=$(median <"$TMP/loss.$i")
done

base=${TPUT[libuv]:-0}
echo
echo "UDP echo, 64-byte datagrams, loopback; $(date -u +%F\ %H:%M) UTC, load average $(cut -d' ' -f1 /proc/loadavg); medians of $REPS runs; throughput: closed loop ${SECS}s,"
echo "4 flows x 64 in flight; latency: open loop at ${RATE}/s; load on cpu0, server on cpu1 (${PIN_SRV[*]:-not pinned})"
printf "%-16s %12s %9s %14s %10s %10s %8s\n" server "dgrams/s" "vs libuv" "cpu us/dgram" "p50 us" "p99 us" "lost %"
for name in "${NAMES[@]}"; do
    ratio=$(awk -v a="${TPUT[$name]}" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf "%-16s %12s %9s %14s %10s %10s %8s\n" "$name" "${TPUT[$name]}" "$ratio" "${CPU[$name]}" \
        "${P50[$name]}" "${P99[$name]}" "${LOSS[$name]}"
done
echo "(poll mode spins: its CPU per datagram counts the spinning; the machine may be shared: see docs/udp.md)"
