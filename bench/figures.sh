#!/usr/bin/env bash
# Figures benchmark (issue 4) on a database of TICKETS synthetic tickets over
# three years, on PostgreSQL and SQLite:
#   1. `hotline generate` builds each database once (kept in $KEEP between runs);
#   2. `hotline serve` on it, and `hotline bench stats`: p50/p99 over HTTP of a
#      one-year by-department request, the whole city over three years, and a
#      month by channel;
#   3. `hotline export` of ROWS tickets (a period of ROWS/daily tickets) to CSV,
#      timed, with the peak RSS from /usr/bin/time;
#   4. `hotline import` of that CSV into a fresh empty database, timed.
# Loopback only. TICKETS=10000000 ROWS=1000000 are the issue's figures.
set -euo pipefail
cd "$(dirname "$0")/.."

TICKETS="${TICKETS:-1000000}"
ROWS="${ROWS:-100000}"
REQUESTS="${REQUESTS:-200}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
KEEP="${KEEP:-$PWD/target/bench-figures}"
PW="bench-admin-password"
BIN=target/release/hotline
cargo build --release --quiet
mkdir -p "$KEEP"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

days=$((3 * 365 + 1))
span=$(( (ROWS * days + TICKETS - 1) / TICKETS ))
from=$(date -u -d "$((2 * 365)) days ago" +%F)
to=$(date -u -d "$from + $span days" +%F)

run() { # name url port
  local name=$1 url=$2 port=$3
  local env=(HOTLINE_ENV=production HOTLINE__SERVER__HOST=127.0.0.1 HOTLINE__SERVER__PORT="$port"
             HOTLINE__DATA_DIR="$work/$name" HOTLINE__DATABASE__URL="$url"
             HOTLINE_ADMIN_PASSWORD="$PW" RUST_LOG=warn)
  if [ ! -e "$KEEP/$name.done" ]; then
    env "${env[@]}" "$BIN" generate --tickets "$TICKETS" --years 3 | tee "$KEEP/$name.generate"
    touch "$KEEP/$name.done"
  fi
  env "${env[@]}" "$BIN" serve > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  env "${env[@]}" "$BIN" bench stats --url "http://127.0.0.1:$port" --password "$PW" --requests "$REQUESTS"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "export $from .. $to:"
  env "${env[@]}" /usr/bin/time -f "export peak_rss_kb=%M wall=%e" "$BIN" export --from "$from" --to "$to" -o "$work/$name.csv"
}

import_into() { # name url
  local env=(HOTLINE_ENV=production HOTLINE__DATA_DIR="$work/imp-$1" HOTLINE__DATABASE__URL="$2"
             HOTLINE_ADMIN_PASSWORD="$PW" RUST_LOG=warn)
  env "${env[@]}" "$BIN" migrate >/dev/null
  env "${env[@]}" "$BIN" demo --tickets 0 >/dev/null   # the catalogue's departments
  env "${env[@]}" /usr/bin/time -f "import peak_rss_kb=%M wall=%e" "$BIN" import "$work/$1.csv"
}

echo "== PostgreSQL"
psql "$PG/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'hl_figures'" | grep -q 1 \
  || { psql "$PG/postgres" -qc "CREATE DATABASE hl_figures"; rm -f "$KEEP/postgres.done"; }
run postgres "$PG/hl_figures" 18191
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS hl_figures_import" -c "CREATE DATABASE hl_figures_import"
import_into postgres "$PG/hl_figures_import"

echo "== SQLite"
run sqlite "sqlite://$KEEP/sqlite.db?mode=rwc" 18192
import_into sqlite "sqlite://$work/import.db?mode=rwc"
