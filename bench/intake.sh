#!/usr/bin/env bash
# Intake benchmark (issue 2): the release binary registers tickets over HTTP
# at 16 connections, on SQLite and on PostgreSQL, and pgbench inserts one row
# per transaction at 16 clients into the same PostgreSQL, in the same run.
# Prints tickets/s, p50, p99, the row count check, and the ratio to pgbench.
# Loopback only; bounded by N requests and T seconds of pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-20000}"
T="${T:-15}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
# Connection options for both hotline and pgbench, e.g. PGQUERY="?sslmode=disable".
PGQUERY="${PGQUERY:-}"
PW="bench-admin-password"
BIN="${BIN:-target/release/hotline}"
[ "$BIN" != target/release/hotline ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

serve_and_bench() { # name database-url port
  local name=$1 url=$2 port=$3
  local env=(HOTLINE_ENV=production HOTLINE__SERVER__HOST=127.0.0.1 HOTLINE__SERVER__PORT="$port"
             HOTLINE__DATA_DIR="$work/$name" HOTLINE__DATABASE__URL="$url"
             HOTLINE_ADMIN_PASSWORD="$PW" RUST_LOG=warn)
  env "${env[@]}" "$BIN" serve > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  env "${env[@]}" "$BIN" bench intake --url "http://127.0.0.1:$port" --password "$PW" --requests "$N" --concurrency 16 \
    | tee "$work/$name.out"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== SQLite"
serve_and_bench sqlite "sqlite://$work/sqlite/hotline.db?mode=rwc" 18181

db="hl_bench_$(date +%s)"
psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
echo "== PostgreSQL ($db)"
serve_and_bench postgres "$PG/$db$PGQUERY" 18182

echo "== pgbench: one INSERT per transaction, 16 clients, ${T}s, same server"
psql "$PG/$db" -qc "CREATE TABLE pgb_insert (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())" >/dev/null
echo "INSERT INTO pgb_insert (payload) VALUES ('市民来电反映：小区门口路灯不亮');" > "$work/insert.sql"
pgbench -n -c 16 -j 2 -T "$T" -f "$work/insert.sql" "$PG/$db$PGQUERY" > "$work/pgbench.out" 2>&1
tps=$(grep -Eo 'tps = [0-9.]+' "$work/pgbench.out" | head -n1 | awk '{print $3}')
ours=$(grep -Eo 'rate=[0-9]+' "$work/postgres.out" | head -n1 | cut -d= -f2)
echo "pgbench tps=$tps"
awk -v o="$ours" -v p="$tps" 'BEGIN { printf "ratio: hotline intake on PostgreSQL / pgbench single-insert = %.2f\n", o / p }'
psql "$PG/postgres" -qc "DROP DATABASE $db" >/dev/null || true
