#!/usr/bin/env bash
# netframe benchmark tables with the floor as a peer (issue 18, part 1).
#
# usage: bench/tables.sh BUILD_DIR [--quick]
#
# For each scenario -- TCP echo 64 B x 50 and 16 KiB x 10, WebSocket echo
# 64 B x 50 and 16 KiB x 10, TLS echo 64 B x 50 and 16 KiB x 10, UDP echo
# 64 B -- every peer (the floors: minimal servers straight on io_uring and on
# epoll; netframe on io_uring and on epoll; the reference peers) is run at two
# offered loads:
#   saturation  the generator as fast as it goes (closed loop, one message in
#               flight per connection; UDP: 64 in flight per flow x 4 flows);
#   fixed rate  half the slowest peer's median saturated rate in this
#               scenario (--rate: paced closed loop for TCP/TLS/WebSocket,
#               open loop for UDP), so every peer gets the same load.
# Every run: the server pinned to cpu0, the generator to cpu1 (lib.sh), the
# server's utime+stime read from /proc/PID/stat after the warmup and after
# the generator exits; server CPU per message = that delta / messages echoed
# in the window.  Repeats are interleaved (each round runs every peer once);
# the table gives medians and ranks by CPU per message within each load.
# Generators verify 1 in NF_BENCH_VERIFY messages byte for byte (and the
# length and sequence of every one); a wrong byte fails the run.
#
# Environment:
#   NF_BENCH_SECS       seconds per run (default 5; --quick: 1)
#   NF_BENCH_REPS       repeats (default 3; --quick: 1)
#   NF_BENCH_WARMUP     warmup seconds before the window (default 1; --quick: 0.5)
#   NF_BENCH_VERIFY     verify 1 in N messages byte for byte (default 16)
#   NF_BENCH_SCENARIOS  regex on scenario ids (tcp64 tcp16k ws64 ws16k tls64 tls16k udp64)
#   NF_BENCH_PEERS      regex on peer names
#   NF_BENCH_RAW        file to append every run's figures to (TSV)
#   NF_BENCH_SERVER_CPU / NF_BENCH_LOAD_CPU   pinning (default 0 / 1)
#
# Exit status: 0 ok, 1 a run failed (a wrong echo, a server that did not
# start or died), 2 usage / missing generator.
set -u -o pipefail

usage() { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
B=${1%/}
QUICK=0
if [ $# -eq 2 ]; then [ "$2" = --quick ] && QUICK=1 || usage; fi
if [ $QUICK = 1 ]; then
    SECS=${NF_BENCH_SECS:-1} REPS=${NF_BENCH_REPS:-1} WARMUP=${NF_BENCH_WARMUP:-0.5}
else
    SECS=${NF_BENCH_SECS:-5} REPS=${NF_BENCH_REPS:-3} WARMUP=${NF_BENCH_WARMUP:-1}
fi
VERIFY=${NF_BENCH_VERIFY:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=tables.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ulimit -n 16384 2>/dev/null || true

for g in nf_loadgen nf_ws_loadgen nf_udp_loadgen; do
    [ -x "$B/bench/$g" ] || { echo "tables.sh: $B/bench/$g missing: make build" >&2; exit 2; }
done
CERTS=""
if [ -x "$B/tests/tls_mkcerts" ]; then
    CERTS=$("$B/tests/tls_mkcerts") || CERTS=""
fi
cleanup_certs() { [ -n "$CERTS" ] && rm -rf "$CERTS"; cleanup; }
trap cleanup_certs EXIT

# Node's ws for the WebSocket tables (as ws.sh: npm ws@8 into bench/node_modules)
NODE_OK=0
if command -v node >/dev/null; then
    if [ -f "$HERE/node_modules/ws/package.json" ]; then
        NODE_OK=1
    elif command -v npm >/dev/null; then
        echo "tables.sh: installing npm ws@8 into bench/node_modules" >&2
        (cd "$HERE" && npm install --no-audit --no-fund --no-save --no-package-lock ws@8 >&2) && NODE_OK=1
    fi
fi

# --- scenarios and peers -------------------------------------------------------
SC_IDS=(tcp64 tcp16k ws64 ws16k tls64 tls16k udp64)
declare -A SC_TITLE=([tcp64]="TCP echo 64 B x 50 conns" [tcp16k]="TCP echo 16 KiB x 10 conns"
    [ws64]="WebSocket echo 64 B x 50 conns" [ws16k]="WebSocket echo 16 KiB x 10 conns"
    [tls64]="TLS echo 64 B x 50 conns" [tls16k]="TLS echo 16 KiB x 10 conns"
    [udp64]="UDP echo 64 B, 4 flows")
declare -A SC_SIZE=([tcp64]=64 [tcp16k]=16384 [ws64]=64 [ws16k]=16384 [tls64]=64 [tls16k]=16384 [udp64]=64)
declare -A SC_CONNS=([tcp64]=50 [tcp16k]=10 [ws64]=50 [ws16k]=10 [tls64]=50 [tls16k]=10 [udp64]=4)

# peers_of ID: sets P_NAMES / P_CMDS (the command takes --port 0 and prints
# "listening on H:P") and FLOOR_U / FLOOR_E (the floors' names, or "")
peers_of() {
    P_NAMES=() P_CMDS=()
    local ES=$B/examples/echo_server WS=$B/examples/ws_echo_server US=$B/examples/udp_echo_server
    local udpopt="--rcvbuf 4194304 --recv-size 2048 --recv-count 0"
    case $1 in
    tcp*)
        FLOOR_U=uring-floor FLOOR_E=epoll-floor
        P_NAMES=(uring-floor epoll-floor netframe-uring netframe-epoll libuv)
        P_CMDS=("$B/bench/nf_uring_echo" "$B/bench/nf_epoll_echo" "$ES --backend uring --mode block"
                "$ES --backend epoll --mode block" "$B/bench/nf_uv_echo")
        ;;
    ws*)
        FLOOR_U="" FLOOR_E=ws-epoll-floor
        P_NAMES=(ws-epoll-floor netframe-uring netframe-epoll libwebsockets)
        P_CMDS=("$B/bench/nf_ws_epoll_echo" "$WS --backend uring --read-buffer 65536"
                "$WS --backend epoll --read-buffer 65536" "$B/bench/nf_lws_echo")
        if [ $NODE_OK = 1 ]; then P_NAMES+=(node-ws); P_CMDS+=("node $HERE/ws_echo.js"); fi
        ;;
    tls*)
        FLOOR_U="" FLOOR_E=tls-epoll-floor
        [ -n "$CERTS" ] || { NOTES+=("no TLS certificates ($B/tests/tls_mkcerts): TLS tables skipped"); return; }
        local c="$CERTS/server.pem" k="$CERTS/server.key"
        P_NAMES=(tls-epoll-floor netframe-uring netframe-epoll libuv+openssl)
        P_CMDS=("$B/bench/nf_tls_epoll_echo --cert $c --key $k" "$ES --backend uring --mode block --tls-cert $c --tls-key $k"
                "$ES --backend epoll --mode block --tls-cert $c --tls-key $k" "$B/bench/nf_uv_tls_echo --cert $c --key $k")
        ;;
    udp*)
        FLOOR_U=uring-floor FLOOR_E=epoll-floor
        P_NAMES=(uring-floor epoll-floor netframe-uring netframe-epoll libuv)
        P_CMDS=("$B/bench/nf_udp_uring_echo" "$B/bench/nf_udp_epoll_echo" "$US --backend uring --mode block $udpopt"
                "$US --backend epoll --mode block $udpopt" "$B/bench/nf_udp_uv_echo")
        ;;
    esac
}

gen_cmd() { # ID PORT [RATE] -> GEN array
    local id=$1 port=$2 rate=${3:-}
    local -a common=(--port "$port" --seconds "$SECS" --warmup "$WARMUP" --verify-every "$VERIFY")
    [ -n "$rate" ] && common+=(--rate "$rate")
    case $id in
    tcp*) GEN=("$B/bench/nf_loadgen" "${common[@]}" --size "${SC_SIZE[$id]}" --connections "${SC_CONNS[$id]}") ;;
    tls*) GEN=("$B/bench/nf_loadgen" "${common[@]}" --size "${SC_SIZE[$id]}" --connections "${SC_CONNS[$id]}" --tls) ;;
    ws*) GEN=("$B/bench/nf_ws_loadgen" "${common[@]}" --size "${SC_SIZE[$id]}" --connections "${SC_CONNS[$id]}") ;;
    udp*) GEN=("$B/bench/nf_udp_loadgen" "${common[@]}" --size "${SC_SIZE[$id]}" --flows "${SC_CONNS[$id]}"
               --window 64 --batch 32) ;;
    esac
}

declare -A R_RATE R_P50 R_P99 R_CPU R_UTIL R_LOST R_MPW R_RUNS FIXED
FAILED=0
LG_TIMEOUT=$(awk -v w="$WARMUP" -v s="$SECS" 'BEGIN { printf "%d", w + s + 30 }')

# run_one ID PEER_INDEX LOAD(sat|fixed) REP
run_one() {
    local id=$1 p=$2 load=$3 rep=$4 name=${P_NAMES[$2]} i
    local key="$id|$load|$name" tag="[$id $load] rep $rep/$REPS $name"
    local -a cmd
    read -r -a cmd <<<"${P_CMDS[$p]}"
    if [ "${cmd[0]}" != node ] && [ ! -x "${cmd[0]}" ]; then
        [ "$load" = sat ] && [ "$rep" = 1 ] && NOTES+=("$id: skipped $name: ${cmd[0]} not built")
        return
    fi
    : >"$TMP/server.out"
    "${PIN_SERVER[@]}" "${LINEBUF[@]}" "${cmd[@]}" --port 0 >"$TMP/server.out" 2>"$TMP/server.err" </dev/null &
    SERVER_PID=$!
    local port=""
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/^listening on [^ ]*:\([0-9][0-9]*\)\( .*\)\{0,1\}$/\1/p' "$TMP/server.out" | head -n 1)
        [ -n "$port" ] && break
        alive "$SERVER_PID" || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        echo "tables.sh: $tag: server did not start:" >&2
        sed 's/^/    /' "$TMP/server.err" | head -10 >&2
        NOTES+=("FAILED: $tag: the server did not start")
        FAILED=1
        return
    fi
    if [ "$load" = fixed ]; then gen_cmd "$id" "$port" "${FIXED[$id]}"; else gen_cmd "$id" "$port"; fi
    timeout -k 5 "$LG_TIMEOUT" "${PIN_LOAD[@]}" "${GEN[@]}" >"$TMP/lg.out" 2>"$TMP/lg.err" </dev/null &
    LOAD_PID=$!
    sleep "$WARMUP"
    local c0 c1 rc w0 w1
    c0=$(cpu_ticks "$SERVER_PID")
    w0=$(wakeups "$SERVER_PID")
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=""
    c1=$(cpu_ticks "$SERVER_PID")
    w1=$(wakeups "$SERVER_PID")
    local died=0
    alive "$SERVER_PID" || died=1
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    local line kv msgs="" rate="" p50="" p99="" errors="" sent="" lost=""
    line=$(grep '^msgs=' "$TMP/lg.out" | tail -n 1)
    for kv in $line; do
        case $kv in
        msgs=*) msgs=${kv#*=} ;; rate=*) rate=${kv#*=} ;; p50_us=*) p50=${kv#*=} ;;
        p99_us=*) p99=${kv#*=} ;; errors=*) errors=${kv#*=} ;; sent=*) sent=${kv#*=} ;; lost=*) lost=${kv#*=} ;;
        esac
    done
    if [ $died = 1 ] || [ "$rc" -ne 0 ] || [ "${errors:-x}" != 0 ] || [ -z "$c0" ] || [ -z "$c1" ] ||
        [ "${msgs:-0}" -eq 0 ]; then
        echo "tables.sh: $tag: FAILED (generator exit $rc, server died=$died): ${line:-no result line}" >&2
        sed 's/^/    /' "$TMP/lg.err" | head -10 >&2
        NOTES+=("FAILED: $tag: generator exit $rc, server died=$died: ${line:-no result line}")
        FAILED=1
        return
    fi
    local cpu util lostp="-" mpw
    mpw=$(awk -v w=$((w1 - w0)) -v m="$msgs" 'BEGIN { printf "%.1f", (w > 0 ? m / w : m) }')
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$msgs" 'BEGIN { printf "%.4f", d * 1e6 / hz / m }')
    util=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.1f", 100 * d / hz / s }')
    [ -n "$sent" ] && lostp=$(awk -v s="$sent" -v l="${lost:-0}" 'BEGIN { printf "%.2f", s ? 100 * l / s : 0 }')
    R_RATE[$key]="${R_RATE[$key]:-} $rate"
    R_P50[$key]="${R_P50[$key]:-} $p50"
    R_P99[$key]="${R_P99[$key]:-} $p99"
    R_CPU[$key]="${R_CPU[$key]:-} $cpu"
    R_UTIL[$key]="${R_UTIL[$key]:-} $util"
    R_LOST[$key]="${R_LOST[$key]:-} $lostp"
    R_MPW[$key]="${R_MPW[$key]:-} $mpw"
    R_RUNS[$key]=$((${R_RUNS[$key]:-0} + 1))
    echo "tables.sh: $tag: rate=$rate p50=${p50}us p99=${p99}us cpu/msg=${cpu}us server-cpu=${util}% msgs/wake=$mpw lost=${lostp}%" >&2
    [ -n "${NF_BENCH_RAW:-}" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$id" "$load" \
        "$name" "$rep" "$rate" "$p50" "$p99" "$cpu" "$util" "$mpw" "$lostp" >>"$NF_BENCH_RAW"
}

LOAD0=$(cut -d' ' -f1 /proc/loadavg)
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "tables.sh: $START kernel $(uname -r), $NPROC CPUs, ${SECS}s runs after ${WARMUP}s warmup, $REPS repeats, verify 1 in $VERIFY, loadavg $LOAD0" >&2

declare -a DONE_IDS
for id in "${SC_IDS[@]}"; do
    [ -n "${NF_BENCH_SCENARIOS:-}" ] && ! [[ $id =~ $NF_BENCH_SCENARIOS ]] && continue
    peers_of "$id"
    [ ${#P_NAMES[@]} -gt 0 ] || continue
    DONE_IDS+=("$id")
    for load in sat fixed; do
        if [ $load = fixed ]; then
            # half the slowest peer's median saturated rate
            FIXED[$id]=""
            slow=""
            for p in "${!P_NAMES[@]}"; do
                k="$id|sat|${P_NAMES[$p]}"
                [ -n "${R_RUNS[$k]:-}" ] || continue
                # shellcheck disable=SC2086
                m=$(median ${R_RATE[$k]})
                slow=$(awk -v a="$slow" -v b="$m" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')
            done
            [ -n "$slow" ] || continue
            FIXED[$id]=$(awk -v s="$slow" 'BEGIN { printf "%d", s / 2 }')
            echo "tables.sh: $id: fixed rate ${FIXED[$id]}/s (half the slowest saturated rate, $slow/s)" >&2
        fi
        for ((rep = 1; rep <= REPS; rep++)); do
            for p in "${!P_NAMES[@]}"; do
                [ -n "${NF_BENCH_PEERS:-}" ] && ! [[ ${P_NAMES[$p]} =~ $NF_BENCH_PEERS ]] && continue
                run_one "$id" "$p" "$load" "$rep"
            done
        done
    done
    # keep the peers of this scenario for the report
    eval "PN_$id=(\"\${P_NAMES[@]}\")"
    eval "FU_$id=\$FLOOR_U FE_$id=\$FLOOR_E"
done

# --- report ---------------------------------------------------------------------
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
print_table() { # TSV file with a header row -> aligned markdown
    awk -F'\t' '
        { n = NR; nf = NF; for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
        END {
            for (r = 1; r <= n; r++) {
                line = "|"
                for (i = 1; i <= nf; i++)
                    line = line sprintf((i <= 2 || r == 1) ? " %-" w[i] "s |" : " %" w[i] "s |", c[r, i])
                print line
                if (r == 1) {
                    sep = "|"
                    for (i = 1; i <= nf; i++) {
                        d = ""; for (j = 0; j < w[i]; j++) d = d "-"
                        sep = sep ((i <= 2) ? " " d " |" : " " substr(d, 2) ": |")
                    }
                    print sep
                }
            }
        }' "$1"
}

echo
echo "# netframe benchmark tables: $START, kernel $(uname -r), $NPROC CPUs; $PIN_TEXT"
echo "# ${SECS}s runs after ${WARMUP}s warmup, medians of $REPS; generators verify 1 in $VERIFY messages byte for byte"
echo "# load average $LOAD0 at the start, $LOAD1 at the end"
echo "# cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo ?)"
echo "# libuv $(pkg-config --modversion libuv 2>/dev/null || echo ?), libwebsockets $(pkg-config --modversion libwebsockets 2>/dev/null || echo ?), $(openssl version 2>/dev/null | cut -d' ' -f1-2), node $(node --version 2>/dev/null || echo -)"
if awk -v a="$LOAD0" -v b="$LOAD1" 'BEGIN { exit !(a > 0.5 || b > 1.5) }'; then
    echo "# PRELIMINARY: measured on a busy machine (load average above what the benchmark itself makes)"
fi
[ $QUICK = 1 ] && echo "# QUICK run (--quick): for checking the harness, not for figures"
echo "#"
echo "# sat = saturation of the generator; fixed = the same offered rate for every peer (half the slowest"
echo "# peer's saturated rate). CPU = server utime+stime per message echoed; ranked by it within each load."
echo "# 'vs floor' = the peer's CPU per message / the floor's, at the same load (lower is better)."
for id in "${DONE_IDS[@]}"; do
    eval "names=(\"\${PN_$id[@]}\")"
    eval "fu=\$FU_$id fe=\$FE_$id"
    echo
    echo "## ${SC_TITLE[$id]}   (fixed rate: ${FIXED[$id]:-n/a} msgs/s)"
    echo
    rows=$TMP/rows.tsv
    hdr="load\tserver\tmsgs/s\tp50 us\tp99 us\tserver CPU %\tmsgs/wake-up\tCPU us/msg\tmsgs per CPU-s"
    [ -n "$fu" ] && hdr="$hdr\tvs ${fu}"
    [ -n "$fe" ] && hdr="$hdr\tvs ${fe}"
    [[ $id == udp* ]] && hdr="$hdr\tlost %"
    printf '%b\n' "$hdr" >"$rows"
    for load in sat fixed; do
        bu="" be=""
        # shellcheck disable=SC2086
        [ -n "$fu" ] && [ -n "${R_RUNS[$id|$load|$fu]:-}" ] && bu=$(median ${R_CPU[$id|$load|$fu]})
        # shellcheck disable=SC2086
        [ -n "$fe" ] && [ -n "${R_RUNS[$id|$load|$fe]:-}" ] && be=$(median ${R_CPU[$id|$load|$fe]})
        : >"$TMP/sc.tsv"
        for name in "${names[@]}"; do
            k="$id|$load|$name"
            [ -n "${R_RUNS[$k]:-}" ] || continue
            # shellcheck disable=SC2086
            awk -v OFS='\t' -v load="$load" -v name="$name" -v runs="${R_RUNS[$k]}" -v reps="$REPS" \
                -v rate="$(median ${R_RATE[$k]})" -v p50="$(median ${R_P50[$k]})" -v p99="$(median ${R_P99[$k]})" \
                -v cpu="$(median ${R_CPU[$k]})" -v util="$(median ${R_UTIL[$k]})" -v mpw="$(median ${R_MPW[$k]})" -v lost="$(median ${R_LOST[$k]})" \
                -v fu="$fu" -v fe="$fe" -v bu="$bu" -v be="$be" -v udp="$([[ $id == udp* ]] && echo 1)" '
                function ratio(b) { return (b != "" && b + 0 > 0) ? sprintf("%.2fx", cpu / b) : "n/a" }
                BEGIN {
                    if (runs + 0 < reps + 0) name = name " (" runs "/" reps ")"
                    line = sprintf("%s\t%s\t%.0f\t%.1f\t%.1f\t%.0f\t%.1f\t%.3f\t%.0f", load, name, rate, p50, p99, util, mpw, cpu,
                                   cpu > 0 ? 1e6 / cpu : 0)
                    if (fu != "") line = line "\t" ratio(bu)
                    if (fe != "") line = line "\t" ratio(be)
                    if (udp) line = line "\t" lost
                    printf "%s\t%.6f\n", line, cpu
                }' >>"$TMP/sc.tsv"
        done
        nf=$(head -n 1 "$TMP/sc.tsv" | awk -F'\t' '{ print NF }')
        [ -s "$TMP/sc.tsv" ] && sort -t "$(printf '\t')" -k"$nf,$nf"g "$TMP/sc.tsv" | cut -f1-$((nf - 1)) >>"$rows"
    done
    print_table "$rows"
done
if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    for n in "${NOTES[@]}"; do echo "note: $n"; done
fi
exit $FAILED
