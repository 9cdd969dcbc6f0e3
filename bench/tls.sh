#!/usr/bin/env bash
# TLS echo benchmark: netframe's TLS filter vs the same server in cleartext
# vs a libuv + OpenSSL memory-BIO echo server (bench/uv_tls_echo.c), plus
# handshakes per second.
#
# usage: bench/tls.sh BUILD_DIR [SECONDS_PER_RUN (default 5)] [REPEATS (default 3)]
#
# Load generator: examples/echo_client (netframe's client; --tls stacks the
# same TLS filter, TLS 1.3, verifying the server against a test CA made by
# tests/tls_mkcerts at run time). Each run starts one server pinned to cpu1,
# runs the generator pinned to cpu0, and reads the server's utime+stime from
# /proc/PID/stat before and after: server CPU per message (or per
# handshake) is the figure to rank by on a shared machine. Medians of the
# repeats. Scenarios: 16 KiB messages over 10 connections, 64 B over 50,
# and connect + handshake + one 64 B echo + close_notify in a loop over 10
# connections (full handshakes, then resumed ones).
set -u -o pipefail

[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: $0 BUILD_DIR [SECONDS] [REPEATS]" >&2; exit 2; }
B=${1%/}
SECS=${2:-5}
REPEATS=${3:-3}
CLIENT=$B/examples/echo_client
SERVER=$B/examples/echo_server
UVTLS=$B/bench/nf_uv_tls_echo
UV=$B/bench/nf_uv_echo
MKCERTS=$B/tests/tls_mkcerts
for f in "$CLIENT" "$SERVER" "$MKCERTS"; do
    [ -x "$f" ] || { echo "tls.sh: $f missing; build first" >&2; exit 2; }
done
CLK_TCK=$(getconf CLK_TCK)
PIN_LOAD=()
PIN_SERVER=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_LOAD=(taskset -c 0)
    PIN_SERVER=(taskset -c 1)
fi
CERTS=$("$MKCERTS")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-tls-bench.XXXXXX")
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    rm -rf "$TMP" "$CERTS"
}
trap cleanup EXIT
FAILED=0

cpu_ticks() { # utime + stime of a pid
    local st
    st=$(cat "/proc/$1/stat") || return 1
    st=${st##*) }
    awk '{ print $12 + $13 }' <<<"$st"
}

start_server() { # name -> SPID, PORT
    local out=$TMP/server.out
    : >"$out"
    case $1 in
    nf_clear) "${PIN_SERVER[@]}" stdbuf -oL "$SERVER" --port 0 >"$out" 2>"$TMP/server.err" & ;;
    nf_tls) "${PIN_SERVER[@]}" stdbuf -oL "$SERVER" --port 0 --tls-cert "$CERTS/server.pem" \
        --tls-key "$CERTS/server.key" >"$out" 2>"$TMP/server.err" & ;;
    uv_tls) "${PIN_SERVER[@]}" stdbuf -oL "$UVTLS" --port 0 --cert "$CERTS/server.pem" \
        --key "$CERTS/server.key" >"$out" 2>"$TMP/server.err" & ;;
    uv_clear) "${PIN_SERVER[@]}" stdbuf -oL "$UV" --port 0 >"$out" 2>"$TMP/server.err" & ;;
    esac
    SPID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "listening on" "$out" && break
        sleep 0.05
    done
    PORT=$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$out")
    [ -n "$PORT" ] || { echo "tls.sh: $1 did not start" >&2; cat "$TMP/server.err" >&2; return 1; }
}

stop_server() {
    kill "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
}

# run SERVER SCENARIO -> prints "rate p50 cpu_us_per_unit"
run_one() {
    local server=$1 scen=$2 args=() tls=()
    case $server in nf_tls | uv_tls) tls=(--tls --tls-ca "$CERTS/ca.pem") ;; esac
    case $scen in
    bulk16k) args=(--size 16384 --connections 10) ;;
    small64) args=(--size 64 --connections 50) ;;
    hs_full) args=(--size 64 --connections 10 --reconnect --tls-no-resume) ;;
    hs_resumed) args=(--size 64 --connections 10 --reconnect) ;;
    esac
    start_server "$server" || return 1
    local t0 t1 out
    t0=$(cpu_ticks "$SPID")
    out=$("${PIN_LOAD[@]}" "$CLIENT" --port "$PORT" --seconds "$SECS" "${args[@]}" "${tls[@]}" 2>"$TMP/client.err")
    local rc=$?
    t1=$(cpu_ticks "$SPID")
    stop_server
    if [ $rc -ne 0 ]; then
        echo "tls.sh: $server $scen: client failed: $out $(tail -3 "$TMP/client.err")" >&2
        FAILED=1
    fi
    local msgs rate p50 hs unit
    msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
    rate=$(sed -n 's/.* rate=\([0-9.]*\) msg.*/\1/p' <<<"$out")
    p50=$(sed -n 's/.* p50=\([0-9.]*\) us.*/\1/p' <<<"$out")
    hs=$(sed -n 's/.*handshakes=\([0-9]*\).*/\1/p' <<<"$out")
    case $scen in hs_*) unit=${hs:-0}; rate=$(sed -n 's/.*hs_rate=\([0-9.]*\).*/\1/p' <<<"$out") ;; *) unit=${msgs:-0} ;; esac
    awk -v r="${rate:-0}" -v p="${p50:-0}" -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$unit" \
        'BEGIN { printf "%s %s %.2f\n", r, p, (n > 0 ? t / hz * 1e6 / n : 0) }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'; }

echo "tls.sh: $(date -u +%FT%TZ) $(nproc) CPUs, ${SECS}s x $REPEATS repeats, pinning: ${PIN_SERVER[*]:-none}" >&2
declare -A RATE P50 CPU
for scen in bulk16k small64 hs_full hs_resumed; do
    case $scen in hs_*) servers="nf_tls uv_tls" ;; *) servers="nf_clear nf_tls uv_tls uv_clear" ;; esac
    for server in $servers; do
        [ "$server" = uv_tls ] && [ ! -x "$UVTLS" ] && continue
        [ "$server" = uv_clear ] && [ ! -x "$UV" ] && continue
        : >"$TMP/r"
        for ((k = 0; k < REPEATS; k++)); do
            echo "tls.sh: $scen $server run $((k + 1))/$REPEATS" >&2
            run_one "$server" "$scen" >>"$TMP/r" || FAILED=1
        done
        [ -n "${NF_TLS_BENCH_DEBUG:-}" ] && cat "$TMP/r" >&2
        RATE[$scen.$server]=$(awk '{ print $1 }' "$TMP/r" | median)
        P50[$scen.$server]=$(awk '{ print $2 }' "$TMP/r" | median)
        CPU[$scen.$server]=$(awk '{ print $3 }' "$TMP/r" | median)
    done
done

echo
echo "| scenario | server | rate (msg/s or handshakes/s) | p50 us | server CPU us per msg / handshake | throughput vs nf cleartext | CPU vs nf cleartext |"
echo "|---|---|---|---|---|---|---|"
for scen in bulk16k small64 hs_full hs_resumed; do
    for server in nf_clear nf_tls uv_tls uv_clear; do
        [ -n "${RATE[$scen.$server]:-}" ] || continue
        base_r=${RATE[$scen.nf_clear]:-}
        base_c=${CPU[$scen.nf_clear]:-}
        awk -v s="$scen" -v n="$server" -v r="${RATE[$scen.$server]}" -v p="${P50[$scen.$server]}" \
            -v c="${CPU[$scen.$server]}" -v br="$base_r" -v bc="$base_c" 'BEGIN {
                vr = br > 0 ? sprintf("%.0f%%", 100 * r / br) : "-";
                vc = bc > 0 ? sprintf("%.2fx", c / bc) : "-";
                printf "| %s | %s | %.0f | %.1f | %.2f | %s | %s |\n", s, n, r, p, c, vr, vc }'
    done
done
echo
echo "nf_clear/nf_tls: examples/echo_server (io_uring, one loop) without/with the TLS filter; uv_tls: bench/uv_tls_echo.c"
echo "(libuv + OpenSSL memory BIOs); uv_clear: bench/uv_echo.c. TLS 1.3, TLS_AES_256_GCM_SHA384, P-256 certificate."
echo "16 KiB throughput kept by TLS (nf_tls / nf_clear): $(awk -v a="${RATE[bulk16k.nf_tls]:-0}" -v b="${RATE[bulk16k.nf_clear]:-0}" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }') (target >= 60%)"
exit $FAILED
