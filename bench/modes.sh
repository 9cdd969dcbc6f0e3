#!/usr/bin/env bash
# netframe completion modes: block / poll / event, 1 and 2 threads, io_uring
# and epoll, under three echo loads; one table of msgs/s, p50/p99 latency and
# server CPU per message (utime+stime from /proc/PID/stat over the measured
# window). Server pinned to cpu1, load generator to cpu0 (taskset).
#
# usage: bench/modes.sh BUILD_DIR [SECONDS (default 3)] [WARMUP (default 1)]
# Environment: NF_MODES_ONLY="regex" keeps only the server rows whose name
# matches; NF_MODES_SCEN="name|size|conns;..." replaces the scenarios;
# NF_BENCH_BASE_PORT (default 18001).
#
# Note: a poll-mode server spins, so its CPU per message is its whole core
# divided by the messages: it measures the price of the mode, not its work.
set -u -o pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [SECONDS] [WARMUP]" >&2; exit 2; }
B=${1%/}; SECS=${2:-3}; WARM=${3:-1}
PORT=${NF_BENCH_BASE_PORT:-18001}
LG=$B/bench/nf_loadgen; ES=$B/examples/echo_server
[ -x "$LG" ] && [ -x "$ES" ] || { echo "modes.sh: build first ($LG, $ES)" >&2; exit 2; }
HZ=$(getconf CLK_TCK)
PIN_S=(); PIN_L=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_S=(taskset -c 1); PIN_L=(taskset -c 0); fi

# name | env | echo_server arguments
SERVERS=(
  "uring block t1||--backend uring --mode block --threads 1"
  "uring block t1 coop (no defer_taskrun)|NF_URING_DISABLE=2|--backend uring --mode block --threads 1"
  "uring block t1 no single_issuer|NF_URING_DISABLE=1|--backend uring --mode block --threads 1"
  "uring block t1 ring fd not registered|NF_URING_DISABLE=8|--backend uring --mode block --threads 1"
  "uring block t1 fixed files|NF_FIXED_FILES=4096|--backend uring --mode block --threads 1"
  "uring block t1 zc>=4096|NF_ZC_SEND_MIN=4096|--backend uring --mode block --threads 1"
  "uring poll t1||--backend uring --mode poll --threads 1"
  "uring poll t1 sqpoll||--backend uring --mode poll --threads 1 --sqpoll"
  "uring event t1||--backend uring --mode event --threads 1"
  "uring block t2||--backend uring --mode block --threads 2"
  "uring block t2 acceptor||--backend uring --mode block --threads 2 --spread acceptor"
  "epoll block t1||--backend epoll --mode block --threads 1"
  "epoll poll t1||--backend epoll --mode poll --threads 1"
  "epoll event t1||--backend epoll --mode event --threads 1"
  "epoll block t2||--backend epoll --mode block --threads 2"
)
SCEN=("64B x 50|64|50" "16KiB x 10|16384|10" "64B x 1 ping-pong|64|1")
[ -n "${NF_MODES_SCEN:-}" ] && IFS=';' read -r -a SCEN <<<"$NF_MODES_SCEN"

cpu() { local s; s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
SRV=""
trap '[ -n "$SRV" ] && kill -TERM $SRV 2>/dev/null; wait 2>/dev/null' EXIT
OUT=$(mktemp)
printf '| scenario | server | msgs/s | p50 us | p99 us | p99.9 us | server CPU us/msg |\n|---|---|---:|---:|---:|---:|---:|\n' >"$OUT"
echo "# netframe modes bench: $(date -u +%FT%TZ) kernel=$(uname -r) nproc=$(nproc) seconds=$SECS warmup=$WARM" >&2
for sc in "${SCEN[@]}"; do
  IFS='|' read -r sname size conns <<<"$sc"
  for sv in "${SERVERS[@]}"; do
    IFS='|' read -r name envs args <<<"$sv"
    [ -n "${NF_MODES_ONLY:-}" ] && ! [[ $name =~ $NF_MODES_ONLY ]] && continue
    PORT=$((PORT + 1))
    # shellcheck disable=SC2086
    env $envs "${PIN_S[@]}" stdbuf -oL "$ES" --port $PORT $args >"$OUT.srv" 2>"$OUT.err" &
    SRV=$!
    for _ in $(seq 50); do grep -q 'listening on' "$OUT.srv" 2>/dev/null && break; sleep 0.1; done
    "${PIN_L[@]}" "$LG" --port $PORT --size "$size" --connections "$conns" --seconds "$SECS" --warmup "$WARM" >"$OUT.lg" 2>&1 &
    L=$!
    sleep "$WARM"; c0=$(cpu $SRV); wait $L; c1=$(cpu $SRV)
    kill -TERM $SRV; wait $SRV 2>/dev/null; SRV=""
    line=$(grep '^msgs=' "$OUT.lg" | tail -1)
    eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(msgs|rate|p50_us|p99_us|p999_us|errors)=' | sed 's/^/local_/')"
    if [ -z "$line" ] || [ "${local_errors:-1}" != 0 ]; then
      echo "modes.sh: $sname / $name: load generator failed: ${line:-$(head -2 "$OUT.lg")}" >&2; continue
    fi
    cpu_us=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v m="$local_msgs" 'BEGIN { printf "%.2f", d * 1e6 / hz / m }')
    echo "modes.sh: $sname | $name: rate=$local_rate p50=$local_p50_us p99=$local_p99_us p99.9=$local_p999_us cpu/msg=$cpu_us" >&2
    printf '| %s | %s | %.0f | %.1f | %.1f | %.1f | %s |\n' "$sname" "$name" "$local_rate" "$local_p50_us" "$local_p99_us" "$local_p999_us" "$cpu_us" >>"$OUT"
  done
done
echo
cat "$OUT"
rm -f "$OUT" "$OUT".*
