#!/usr/bin/env bash
# The soak test: two `hotline serve` instances on one PostgreSQL and one
# Redis, a load generator walking tickets through their whole lifecycle at a
# steady rate round-robin over both, a local SMTP sink — and faults on the
# way: one instance killed with SIGKILL and restarted, Redis stopped and
# restarted, PostgreSQL restarted, and escalation sweeps from two processes
# at once. Afterwards both instances get SIGTERM (they must drain and exit
# 0), one instance is started again to deliver the mail the last sweep
# queued, and a checker proves from the database, the generator's
# acknowledgements and the sink that nothing was lost or doubled.
#
#   tests/soak/run.sh            # 600 s at 500 req/s (the full run)
#   tests/soak/run.sh --short    # 60 s, the same faults compressed (CI)
#
# Environment: SOAK_BIN (default target/release/hotline, else
# target/debug/hotline), SOAK_RATE, SOAK_SECONDS, TEST_DATABASE_URL
# (a PostgreSQL server where the user may CREATE DATABASE; default
# postgres://postgres@127.0.0.1:5432/test), TEST_REDIS_URL (default
# redis://127.0.0.1:6379; this script stops and restarts that server, so
# run it on a machine of your own). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=full
[ "${1:-}" = "--short" ] && mode=short

BIN="${SOAK_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/hotline ]; then BIN=target/release/hotline; else BIN=target/debug/hotline; fi
fi
[ -x "$BIN" ] || { echo "soak: no binary at $BIN (cargo build first)"; exit 2; }

if [ "$mode" = full ]; then
  DURATION="${SOAK_SECONDS:-600}"
  KILL_AT=120 RESTART_AFTER=5 REDIS_AT=240 REDIS_DOWN=60 PG_AT=420 SWEEP_AT=330
else
  DURATION="${SOAK_SECONDS:-60}"
  KILL_AT=10 RESTART_AFTER=3 REDIS_AT=18 REDIS_DOWN=12 PG_AT=42 SWEEP_AT=34
fi
RATE="${SOAK_RATE:-500}"

PG_BASE="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
REDIS_PORT="$(echo "$REDIS_URL" | sed -E 's#.*:([0-9]+)/?.*#\1#')"
DB="soak_$(date +%s)_$$"
DB_URL="${PG_BASE%/*}/$DB"
WORK="$(mktemp -d /tmp/hotline-soak.XXXXXX)"
export HOTLINE_ADMIN_PASSWORD="soak-admin-$$-pw"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT_A=$(free_port); PORT_B=$(free_port); SMTP_PORT=$(free_port)

pg_cluster() { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main "$1"; }
redis_start() {
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
}

pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || redis_start || true
  if [ "${status:-1}" = 0 ] || [ -n "${SOAK_DROP:-}" ]; then
    psql "$PG_BASE" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  else
    echo "soak: database $DB kept for inspection"
  fi
}
trap cleanup EXIT

psql "$PG_BASE" -qc "CREATE DATABASE $DB" >/dev/null
redis-cli -p "$REDIS_PORT" flushall >/dev/null

export HOTLINE_ENV=production
export HOTLINE__DATABASE__URL="$DB_URL"
export HOTLINE__REDIS__URL="$REDIS_URL"
export HOTLINE__MAIL__SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
export HOTLINE__MAIL__CLAIM_SECS=90
export HOTLINE__SWEEP__INTERVAL=5
export HOTLINE__SERVER__HOST=127.0.0.1
export HOTLINE__SERVER__REQUEST_TIMEOUT_SECS=15
export HOTLINE__DATABASE__MAX_CONNECTIONS=24
export RUST_LOG="${RUST_LOG:-info}"

"$BIN" bench smtp-sink --port "$SMTP_PORT" --out "$WORK/sink.txt" 2>"$WORK/sink.log" &
pids+=($!)
RUST_LOG=warn "$BIN" migrate >/dev/null

started=""
start_instance() { # name port  (sets $started to the pid: a child of this shell)
  HOTLINE__SERVER__PORT="$2" HOTLINE__DATA_DIR="$WORK/$1" \
    "$BIN" serve >>"$WORK/$1.log" 2>&1 &
  started=$!
  pids+=("$started")
}
wait_up() { # port
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "soak: instance on port $1 did not come up"; return 1
}
start_instance a "$PORT_A"; A=$started
start_instance b "$PORT_B"; B=$started
wait_up "$PORT_A"; wait_up "$PORT_B"

echo "soak: $mode run, $DURATION s at $RATE req/s; instances :$PORT_A :$PORT_B; database $DB; work dir $WORK"
"$BIN" bench soak --urls "http://127.0.0.1:$PORT_A,http://127.0.0.1:$PORT_B" \
  --rate "$RATE" --seconds "$DURATION" --acks "$WORK/acks.txt" --summary "$WORK/summary.json" \
  >"$WORK/generator.out" 2> >(tee "$WORK/generator.log" >&2) &
GEN=$!; pids+=("$GEN")
t0=$(date +%s)
at() { local wait=$(( $1 - ($(date +%s) - t0) )); [ "$wait" -gt 0 ] && sleep "$wait"; return 0; }
faults=()

at "$KILL_AT"
date +%s%3N >>"$WORK/crashes.txt"
kill -9 "$B"; echo "soak: t=$(( $(date +%s) - t0 ))s SIGKILL instance b (pid $B)"
sleep "$RESTART_AFTER"
start_instance b "$PORT_B"; B=$started; wait_up "$PORT_B"
echo "soak: t=$(( $(date +%s) - t0 ))s instance b restarted"
faults+=("instance b SIGKILLed and restarted")

at "$REDIS_AT"
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
echo "soak: t=$(( $(date +%s) - t0 ))s Redis stopped"
sleep "$REDIS_DOWN"
redis_start
echo "soak: t=$(( $(date +%s) - t0 ))s Redis restarted"
faults+=("Redis down ${REDIS_DOWN}s")

at "$SWEEP_AT"
# Two escalation sweeps at once, as of instants days ahead, racing each
# other and the instances' own sweepers on live tickets.
later=$(date -u -d '+3 days' +%Y-%m-%dT%H:%M:%SZ)
"$BIN" sweep --at "$later" >"$WORK/sweep1.log" 2>&1 &
s1=$!
"$BIN" sweep --at "$later" >"$WORK/sweep2.log" 2>&1 &
s2=$!
wait "$s1" "$s2"
echo "soak: t=$(( $(date +%s) - t0 ))s two concurrent sweeps at $later: $(tail -n1 "$WORK/sweep1.log") | $(tail -n1 "$WORK/sweep2.log")"
faults+=("two concurrent escalation sweeps")

at "$PG_AT"
pg_cluster restart
echo "soak: t=$(( $(date +%s) - t0 ))s PostgreSQL restarted"
faults+=("PostgreSQL restarted")

wait "$GEN"
cat "$WORK/generator.out"

# Let the outbox drain while both instances still run, then stop them the
# way an orchestrator does: SIGTERM, and they must exit 0 within 30 s.
RUST_LOG=warn "$BIN" bench soak-check --acks "$WORK/acks.txt" --sink "$WORK/sink.txt" --wait-only
for name in A B; do
  pid=${!name}
  started=$(date +%s%N)
  kill -TERM "$pid"
  code=0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "soak: FAIL instance $name did not stop within 30 s of SIGTERM"; exit 1
  fi
  wait "$pid" || code=$?
  echo "soak: instance $name stopped on SIGTERM in $(( ($(date +%s%N) - started) / 1000000 )) ms, exit code $code"
  [ "$code" = 0 ] || { echo "soak: FAIL instance $name exited $code"; exit 1; }
done

# A sweep round just before the SIGTERMs may have queued mail that neither
# instance delivered before it stopped: it waits in the outbox, as it would
# for the next deployment. Start one instance again (one sweep at start,
# then none for 10 minutes), let it deliver what waits, and stop it too.
HOTLINE__SWEEP__INTERVAL=600 start_instance drain "$PORT_A"; D=$started; wait_up "$PORT_A"
sleep 3
RUST_LOG=warn "$BIN" bench soak-check --acks "$WORK/acks.txt" --sink "$WORK/sink.txt" --wait-only
kill -TERM "$D"
for _ in $(seq 1 300); do kill -0 "$D" 2>/dev/null || break; sleep 0.1; done
code=0; wait "$D" || code=$?
echo "soak: the drain instance delivered what waited and stopped on SIGTERM, exit code $code"
[ "$code" = 0 ] || { echo "soak: FAIL the drain instance exited $code"; exit 1; }

status=0
RUST_LOG=warn "$BIN" bench soak-check --acks "$WORK/acks.txt" --sink "$WORK/sink.txt" --crashes "$WORK/crashes.txt" || status=1

panics=$(cat "$WORK"/a.log "$WORK"/b.log "$WORK"/drain.log | grep -c 'panicked' || true)
phones=$(cat "$WORK"/a.log "$WORK"/b.log "$WORK"/drain.log | grep -Ec '(^|[^0-9.])1[3-9][0-9]{9}($|[^0-9])' || true)
e5=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["error_5xx"], d["io_errors"], d["unexpected_4xx"], "%.1f" % d["rate"])' "$WORK/summary.json")
echo "soak: faults survived: ${faults[*]/%/;}"
echo "soak: panics in the logs: $panics; log lines with a phone number: $phones; (5xx, io errors, unexpected 4xx, req/s): $e5"
[ "$panics" = 0 ] || status=1
[ "$phones" = 0 ] || status=1
if [ "$status" = 0 ]; then echo "soak: PASS"; else echo "soak: FAIL (logs in $WORK)"; fi
exit "$status"
