#!/usr/bin/env bash
# Instructions per echoed message, counted by valgrind's callgrind: a figure
# that repeats run to run on a shared, noisy machine (it counts user-space
# instructions only: the kernel's work, the same TCP for every server and
# most of the cost, is not in it).
#
# usage: bench/callgrind.sh BUILD_DIR [MESSAGES (default 10000)] [REPEATS (default 3)]
#
# For each server and scenario: start the server under callgrind, then run
# the load generator several times (--messages N to warm up, then REPEATS
# pairs of N and 2N; each run opens and closes its connections), dumping
# callgrind's counters after each run (callgrind_control -d: dump and zero).
# The difference within a pair removes start-up, connection set-up and
# tear-down:  Ir/msg = (Ir[2N run] - Ir[N run]) / (msgs[2N] - msgs[N]); the
# table gives the median of the pairs (and each of them).
#
# Under callgrind a server runs ~50x slower while the load generator does
# not, so with many connections it finds more completions per wake-up than
# at full speed, and the per-iteration cost is shared by more messages: the
# 50-connection figures move with the batch sizes (compare the pairs); the
# 1-connection ping-pong (one message per wake-up) is the repeatable one.
# Environment: NF_CG_ONLY="regex" keeps matching server names;
# NF_CG_SCENARIOS="64B x 50|64|50;16KiB x 10|16384|10" overrides scenarios;
# NF_BENCH_BASE_PORT (default 19001); NF_CG_NOBOUND=1 adds echo_server
# --no-write-bound on both backends (what the default write-queue bound costs).
set -u -o pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [MESSAGES]" >&2; exit 2; }
B=${1%/}
N=${2:-10000}
REPEATS=${3:-3}
PORT=${NF_BENCH_BASE_PORT:-19001}
LG=$B/bench/nf_loadgen
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "callgrind.sh: valgrind not installed (apt-get install valgrind): skipped" >&2; exit 0; }
[ -x "$LG" ] || { echo "callgrind.sh: build first ($LG)" >&2; exit 2; }

# name | env | binary | arguments
SERVERS=(
    "netframe-uring||$B/examples/echo_server|--backend uring"
    "netframe-uring fixed files|NF_FIXED_FILES=4096|$B/examples/echo_server|--backend uring"
    "netframe-epoll||$B/examples/echo_server|--backend epoll"
    "libuv||$B/bench/nf_uv_echo|"
    "epoll-plain||$B/bench/nf_epoll_echo|"
)
if [ "${NF_CG_NOBOUND:-0}" = 1 ]; then
    SERVERS+=("netframe-uring nobound||$B/examples/echo_server|--backend uring --no-write-bound"
              "netframe-epoll nobound||$B/examples/echo_server|--backend epoll --no-write-bound")
fi
IFS=';' read -r -a SCEN <<<"${NF_CG_SCENARIOS:-64B x 1 ping-pong|64|1;64B x 50|64|50;16KiB x 10|16384|10}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-cg.XXXXXX")
SRV=""
cleanup() { [ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null; wait 2>/dev/null; [ -n "${NF_CG_KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

# Asks for dump number k and prints its total Ir. Valgrind handles the
# request only when the server runs, and an io_uring server's loop thread
# sleeps in io_uring_enter holding valgrind's lock: a connection that opens
# and closes wakes it (counted in the dump: a few hundred instructions).
dump_ir() {
    local pid=$1 k=$2 f="$TMP/cg.out.$2" i cc
    timeout 60 callgrind_control -d "$pid" >/dev/null 2>&1 &
    cc=$!
    for ((i = 0; i < 300; i++)); do
        [ -s "$f" ] && grep -q '^totals:' "$f" && break
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
        sleep 0.1
    done
    wait "$cc" 2>/dev/null
    awk '/^totals:/ { print $2 }' "$f"
}

echo "# callgrind bench: $(date -u +%FT%TZ) kernel=$(uname -r) messages=$N then $REPEATS x ($N, $((2 * N))) per server" >&2
ROWS="$TMP/rows"
: >"$ROWS"
for sc in "${SCEN[@]}"; do
    IFS='|' read -r sname size conns <<<"$sc"
    for sv in "${SERVERS[@]}"; do
        IFS='|' read -r name envs bin args <<<"$sv"
        [ -n "${NF_CG_ONLY:-}" ] && ! [[ $name =~ $NF_CG_ONLY ]] && continue
        [ -x "$bin" ] || { echo "callgrind.sh: $name: $bin missing, skipped" >&2; continue; }
        PORT=$((PORT + 1))
        rm -f "$TMP"/cg.out*
        # shellcheck disable=SC2086
        env $envs valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" --dump-instr=no \
            "$bin" --port "$PORT" $args >"$TMP/srv.out" 2>"$TMP/srv.err" &
        SRV=$!
        # Valgrind runs one thread at a time and does not let go of its lock
        # while a thread sleeps in io_uring_enter: the main thread, which
        # prints 'listening on', runs only when a completion wakes the loop
        # thread. A connection that opens and closes is such a completion.
        for _ in $(seq 150); do
            grep -q 'listening on' "$TMP/srv.out" 2>/dev/null && break
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
            sleep 0.2
        done
        ok=1
        k=0
        vals=()
        run_lg() { # messages -> sets MSGS and IRK (the dump after the run)
            local line
            line=$(timeout 300 "$LG" --port "$PORT" --size "$size" --connections "$conns" --seconds 240 --warmup 0 \
                --messages "$1" 2>"$TMP/lg.err" | grep '^msgs=')
            MSGS=$(echo "$line" | sed -n 's/.*msgs=\([0-9]*\).* errors=0\( .*\)\{0,1\}$/\1/p')
            [ -n "$MSGS" ] || { echo "callgrind.sh: $sname / $name: load generator failed: $line $(head -2 "$TMP/lg.err")" >&2; return 1; }
            sleep 0.5 # let the server see the connections close
            k=$((k + 1))
            IRK=$(dump_ir "$SRV" "$k")
            [ -n "$IRK" ] || { echo "callgrind.sh: $sname / $name: no callgrind dump" >&2; return 1; }
        }
        run_lg "$N" || ok=0 # warm-up
        for ((r = 1; r <= REPEATS && ok; r++)); do
            run_lg "$N" || { ok=0; break; }
            ir1=$IRK m1=$MSGS
            run_lg $((2 * N)) || { ok=0; break; }
            v=$(awk -v a="$IRK" -v b="$ir1" -v m2="$MSGS" -v m1="$m1" 'BEGIN { printf "%.0f", (a - b) / (m2 - m1) }')
            # a pair whose second dump came back empty or stale is dropped
            [ "$v" -gt 0 ] 2>/dev/null || { echo "callgrind.sh: $sname / $name: rep $r: bad dump, dropped" >&2; continue; }
            vals+=("$v")
            echo "callgrind.sh: $sname | $name: rep $r: Ir $ir1 ($m1 msgs) -> $IRK ($MSGS msgs): $v Ir/msg" >&2
        done
        kill -KILL "$SRV" 2>/dev/null
        wait "$SRV" 2>/dev/null
        SRV=""
        [ $ok = 1 ] && [ ${#vals[@]} -gt 0 ] || continue
        per=$(printf '%s\n' "${vals[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
        all=$(IFS=/; echo "${vals[*]}")
        printf '%s\t%s\t%s\t%s\n' "$sname" "$name" "$per" "$all" >>"$ROWS"
    done
done
echo
echo "instructions per echoed message (valgrind --tool=callgrind, user space only; lower is better)"
echo
echo "| scenario | server | Ir/msg (median) | vs libuv | each pair |"
echo "|---|---|---:|---:|---|"
awk -F'\t' '{ sc[NR] = $1; nm[NR] = $2; ir[NR] = $3; all[NR] = $4; if ($2 == "libuv") base[$1] = $3 }
    END { for (i = 1; i <= NR; i++)
              printf "| %s | %s | %d | %s | %s |\n", sc[i], nm[i], ir[i], (base[sc[i]] > 0 ? sprintf("%.2fx", ir[i] / base[sc[i]]) : "n/a"), all[i] }' "$ROWS"
