#!/usr/bin/env bash
# UDP echo: server CPU per datagram, datagrams per wake-up and system calls
# per datagram as the offered load grows (issue 18: why bench/udp.sh once gave
# netframe-uring 1.99x libuv's datagrams/s and later 0.98x).
#
# usage: bench/udp_probe.sh BUILD_DIR [SECONDS (default 2)] [REPEATS (default 3)]
#
# For every server and every offered load in NF_UDP_PROBE_RATES (datagrams/s,
# open loop; "sat" = the closed loop of nf_udp_loadgen, 4 flows x 64 in
# flight) the server is pinned to cpu0 and nf_udp_loadgen to cpu1; medians of
# the repeats of: datagrams/s echoed, server CPU % of its core, datagrams per
# server wake-up (voluntary context switches), server CPU us per datagram.
# With NF_UDP_PROBE_STRACE=1 one extra run per server at the first rate under
# `strace -c -f` prints the system calls per datagram (strace slows the
# server: the counts show the structure, not the speed).
#
# Environment: NF_UDP_PROBE_RATES (default "25000 50000 100000 200000 sat"),
# NF_UDP_PROBE_SERVERS (regex on names).
set -u -o pipefail
[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: $0 BUILD_DIR [SECONDS] [REPEATS]" >&2; exit 2; }
B=${1%/}
SECS=${2:-2}
REPS=${3:-3}
RATES=${NF_UDP_PROBE_RATES:-25000 50000 100000 200000 sat}
BENCH=udp_probe.sh
. "$(dirname "$0")/lib.sh"
GEN=$B/bench/nf_udp_loadgen
[ -x "$GEN" ] || { echo "udp_probe.sh: $GEN missing: make build" >&2; exit 2; }
udpopt="--rcvbuf 4194304 --recv-size 2048 --recv-count 0"
NAMES=(uring-floor epoll-floor netframe-uring netframe-epoll libuv)
CMDS=("$B/bench/nf_udp_uring_echo" "$B/bench/nf_udp_epoll_echo"
      "$B/examples/udp_echo_server --backend uring --mode block $udpopt"
      "$B/examples/udp_echo_server --backend epoll --mode block $udpopt" "$B/bench/nf_udp_uv_echo")

start() { # index -> SERVER_PID, SPORT
    local -a cmd
    read -r -a cmd <<<"${CMDS[$1]}"
    : >"$TMP/s.out"
    "${PIN_SERVER[@]}" "${LINEBUF[@]}" "${cmd[@]}" --port 0 >"$TMP/s.out" 2>"$TMP/s.err" &
    SERVER_PID=$!
    SPORT=""
    for ((i = 0; i < 100; i++)); do
        SPORT=$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$TMP/s.out")
        [ -n "$SPORT" ] && return 0
        sleep 0.05
    done
    return 1
}

gen_args() { # rate -> GA
    GA=(--port "$SPORT" --seconds "$SECS" --warmup 0.5 --flows 4 --window 64 --batch 32)
    [ "$1" != sat ] && GA+=(--rate "$1")
}

declare -A RATE UTIL MPW CPU
echo "udp_probe.sh: $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1 /proc/loadavg); $PIN_TEXT; ${SECS}s x $REPS" >&2
for ((r = 1; r <= REPS; r++)); do
    for rate in $RATES; do
        for s in "${!NAMES[@]}"; do
            [ -n "${NF_UDP_PROBE_SERVERS:-}" ] && ! [[ ${NAMES[$s]} =~ $NF_UDP_PROBE_SERVERS ]] && continue
            start "$s" || { echo "udp_probe.sh: ${NAMES[$s]} did not start" >&2; exit 1; }
            gen_args "$rate"
            "${PIN_LOAD[@]}" "$GEN" "${GA[@]}" >"$TMP/g.out" 2>&1 &
            LOAD_PID=$!
            sleep 0.5
            c0=$(cpu_ticks "$SERVER_PID") w0=$(wakeups "$SERVER_PID")
            wait "$LOAD_PID"
            LOAD_PID=""
            c1=$(cpu_ticks "$SERVER_PID") w1=$(wakeups "$SERVER_PID")
            stop_pid "$SERVER_PID"
            SERVER_PID=""
            line=$(grep '^msgs=' "$TMP/g.out")
            msgs=$(sed -n 's/^msgs=\([0-9]*\).*/\1/p' <<<"$line")
            grep -q 'errors=0' <<<"$line" || echo "udp_probe.sh: ${NAMES[$s]} $rate: $line" >&2
            k="${NAMES[$s]}|$rate"
            RATE[$k]+=" $(awk -v m="$msgs" -v s="$SECS" 'BEGIN { printf "%.0f", m / s }')"
            UTIL[$k]+=" $(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * d / hz / s }')"
            MPW[$k]+=" $(awk -v w=$((w1 - w0)) -v m="$msgs" 'BEGIN { printf "%.1f", (w > 0 ? m / w : 0) }')"
            CPU[$k]+=" $(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$msgs" 'BEGIN { printf "%.3f", (m > 0 ? d * 1e6 / hz / m : 0) }')"
            echo "udp_probe.sh: rep $r ${NAMES[$s]} $rate: $line cpu_ticks=$((c1 - c0)) wakeups=$((w1 - w0))" >&2
        done
    done
done

echo
echo "| offered | server | dgrams/s | server CPU % | dgrams per wake-up | CPU us/dgram |"
echo "|---|---|---:|---:|---:|---:|"
for rate in $RATES; do
    for s in "${!NAMES[@]}"; do
        k="${NAMES[$s]}|$rate"
        [ -n "${RATE[$k]:-}" ] || continue
        # shellcheck disable=SC2086
        echo "| $rate | ${NAMES[$s]} | $(median ${RATE[$k]}) | $(median ${UTIL[$k]}) | $(median ${MPW[$k]}) | $(median ${CPU[$k]}) |"
    done
done

if [ "${NF_UDP_PROBE_STRACE:-0}" = 1 ] && command -v strace >/dev/null; then
    rate=${RATES%% *}
    echo
    echo "system calls per echoed datagram at $rate/s (strace -c -f; the slowed server batches differently):"
    for s in "${!NAMES[@]}"; do
        [ -n "${NF_UDP_PROBE_SERVERS:-}" ] && ! [[ ${NAMES[$s]} =~ $NF_UDP_PROBE_SERVERS ]] && continue
        start "$s" || exit 1
        strace -c -f -q -o "$TMP/st" -p "$SERVER_PID" &
        ST=$!
        sleep 0.3
        gen_args "$rate"
        "${PIN_LOAD[@]}" "$GEN" "${GA[@]}" --verify-every 1 >"$TMP/g.out" 2>&1
        kill -INT "$ST"
        wait "$ST" 2>/dev/null
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        # --verify-every 1: every echo the generator received (warmup included) is counted in verified=
        tot=$(sed -n 's/.* verified=\([0-9]*\).*/\1/p' "$TMP/g.out")
        printf '  %-15s' "${NAMES[$s]}"
        awk -v n="$tot" '$NF ~ /^(sendmsg|sendmmsg|recvmsg|recvmmsg|io_uring_enter|epoll_wait|sendto|recvfrom)$/ {
                printf " %s=%.3f", $NF, $4 / n } END { print "" }' "$TMP/st"
    done
fi
