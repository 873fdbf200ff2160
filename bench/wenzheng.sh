#!/usr/bin/env bash
# 问政江西 intake benchmark: the release binary takes signed wenzheng pushes
# (HMAC-SHA256 over timestamp.body, each its own post_id) over HTTP at 16
# connections, on a fresh PostgreSQL database (and SQLite with SQLITE=1).
# Prints appeals/s, p50, p99 and the count found in the database afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-20000}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
PGQUERY="${PGQUERY:-}"
PW="bench-admin-password"
SECRET="bench-wenzheng-secret"
BIN="${BIN:-target/release/hotline}"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

serve_and_bench() { # name database-url port
  local name=$1 url=$2 port=$3
  local env=(HOTLINE_ENV=production HOTLINE__SERVER__HOST=127.0.0.1 HOTLINE__SERVER__PORT="$port"
             HOTLINE__DATA_DIR="$work/$name" HOTLINE__DATABASE__URL="$url"
             HOTLINE__CHANNELS__WENZHENG__SECRET="$SECRET" HOTLINE_ADMIN_PASSWORD="$PW" RUST_LOG=warn)
  env "${env[@]}" "$BIN" serve > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  env "${env[@]}" "$BIN" bench wenzheng --url "http://127.0.0.1:$port" --requests "$N" --concurrency 16 \
    | tee "$work/$name.out"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

if [ -n "${SQLITE:-}" ]; then
  echo "== SQLite"
  serve_and_bench sqlite "sqlite://$work/sqlite/hotline.db?mode=rwc" 18191
fi

db="hl_wzbench_$(date +%s)"
psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
echo "== PostgreSQL ($db)"
serve_and_bench postgres "$PG/$db$PGQUERY" 18192
psql "$PG/postgres" -qc "DROP DATABASE $db" >/dev/null || true
