#!/usr/bin/env bash
# API conformance: schemathesis against a real server and its own OpenAPI
# document (/api/openapi.json). Builds nothing: give the binary as $1
# (default target/debug/hotline). It starts `hotline serve` on a free
# loopback port with a fresh SQLite data dir filled by `hotline demo`, logs in
# as admin, and runs every operation with the checks below, then the ticket
# operations as a dispatcher and as a department's handler; last, with
# throwaway users, the operations that would end a token's life (log-out,
# password change, PATCH users) and a new catalogue. Exits non-zero on any
# failure (a check, a server error, a panic in the server log).
#
#   tests/schemathesis/run.sh target/debug/hotline
#
# ST_MAX_EXAMPLES (default 25) bounds the test cases per operation and phase;
# ST_SEED (default 12345; empty for a random one) fixes the generation;
# ST_CHECKS replaces the list of checks; ST_REPORT the reports (junit, har, …);
# ST_KEEP=1 keeps the data dir with the server log and the reports;
# ST_POSTGRES=postgres://user@host:port runs on a fresh PostgreSQL database
# there instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/../.."
# No __pycache__ beside the hooks and the config writer.
export PYTHONDONTWRITEBYTECODE=1

ST_VERSION=4.32.5
BIN=${1:-target/debug/hotline}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-25}
SEED=${ST_SEED-12345}
CHECKS=${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}

if [ ! -x "$BIN" ]; then
  echo "schemathesis: no binary at $BIN (cargo build --bin hotline)" >&2
  exit 2
fi
if ! command -v st >/dev/null 2>&1 || [ "$(st --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]; then
  echo "schemathesis: installing schemathesis==$ST_VERSION"
  python3 -m pip install --quiet "schemathesis==$ST_VERSION"
fi

started=$(date +%s)
dir=$(mktemp -d "${TMPDIR:-/tmp}/hotline-st.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
server=""

cleanup() {
  local status=$?
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ -n "${pg_db:-}" ]; then
    psql -q "$ST_POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ "${ST_KEEP:-}" = "1" ] || [ "$status" -ne 0 ]; then
    echo "schemathesis: server log and reports kept in $dir"
  else
    rm -rf "$dir"
  fi
  echo "schemathesis: $(($(date +%s) - started)) s"
}
trap cleanup EXIT

# Only this server's settings: SQLite in the temporary dir (or a fresh
# PostgreSQL database on the ST_POSTGRES server, e.g.
# postgres://postgres@127.0.0.1:5432), whatever the caller's environment says.
unset DATABASE_URL HOTLINE__DATABASE__URL HOTLINE__REDIS__URL
if [ -n "${ST_POSTGRES:-}" ]; then
  pg_db="hl_st_$(date +%s)_$RANDOM"
  psql -q "$ST_POSTGRES/postgres" -c "CREATE DATABASE $pg_db" >/dev/null
  export HOTLINE__DATABASE__URL="$ST_POSTGRES/$pg_db"
fi
export HOTLINE_ENV=test
export HOTLINE_ADMIN_PASSWORD="st-admin-$RANDOM$RANDOM"
export HOTLINE__DATA_DIR="$dir"
export HOTLINE__SERVER__HOST=127.0.0.1
export HOTLINE__SERVER__PORT="$port"
export HOTLINE__SERVER__BASE_URL="$base"
export HOTLINE__SERVER__WORKERS=2
export HOTLINE__CHANNELS__WENZHENG__SECRET=st-wenzheng-secret
export HOTLINE__OPEN311__API_KEY=st-open311-key
# The mailbox's rate limits would answer 429 to nearly every generated
# letter; without them the letters reach validation and registration.
export HOTLINE__MAILBOX__PER_PHONE_PER_MINUTE=0
export HOTLINE__MAILBOX__PER_PHONE_PER_DAY=0
export HOTLINE__MAILBOX__PER_ADDRESS_PER_MINUTE=0
export HOTLINE__MAILBOX__PER_ADDRESS_PER_DAY=0
# The log-in guard counts every failure from 127.0.0.1: without the
# per-address limit the passes can still log in after the login fuzzing
# (the per-user-name limit stays, and answers 429).
export HOTLINE__AUTH__MAX_FAILED_LOGINS_PER_ADDRESS=0
export RUST_LOG=${RUST_LOG:-warn}

"$BIN" demo --tickets 50 >"$dir/demo.log" 2>&1
"$BIN" serve >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "schemathesis: the server did not start:" >&2
    tail -20 "$dir/server.log" >&2
    exit 1
  fi
  sleep 0.2
done

api() { # METHOD PATH TOKEN [JSON]
  curl -fsS -X "$1" "$base$2" -H 'content-type: application/json' \
    ${3:+-H "authorization: Bearer $3"} ${4:+-d "$4"}
}
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
login() { api POST /api/v1/auth/login "" "{\"username\":\"$1\",\"password\":\"$2\"}" | field token; }

token=$(login admin "$HOTLINE_ADMIN_PASSWORD")

user_password() { awk -v u="$1" '$1 == u { print $3 }' "$dir/demo-credentials.txt"; }
new_user() { # USERNAME ROLE [DEPARTMENT] -> its token
  local password="st-$1-$RANDOM$RANDOM"
  api POST /api/v1/users "$token" \
    "{\"username\":\"$1\",\"password\":\"$password\",\"role\":\"$2\",\"department\":${3:-null}}" >/dev/null
  login "$1" "$password"
}

st_run() { # NAME TOKEN ST-ARGS...
  local name=$1 tok=$2
  shift 2
  echo "schemathesis: pass \`$name'"
  # What the generator may draw instead of random values: what this
  # caller can reach (tickets, extension requests, users, ...).
  python3 tests/schemathesis/config.py "$base" "$tok" "$dir/$name.toml" "${EXCLUDED_USER:-}"
  # One worker: CPython 3.11's ast.parse, which Hypothesis calls while
  # building strategies, is not thread-safe.
  # From the data dir: schemathesis keeps its cache (.schemathesis/) in the
  # working directory.
  (cd "$dir" && st --config-file "$dir/$name.toml" run "$base/api/openapi.json" \
    --header "Authorization: Bearer $tok" \
    --checks "$CHECKS" \
    --phases coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    ${SEED:+--seed "$SEED"} \
    --workers 1 \
    --request-timeout 20 \
    --suppress-health-check all \
    --report "${ST_REPORT:-junit}" --report-dir "$dir/report-$name" \
    --no-color "$@")
}

# Kept for the passes at the end: the live stream never ends; log-out, a
# password change or a PATCH of users would end the admin token's life; a
# new catalogue would take away the services and departments the others use.
late='^/api/v1/(auth/logout|auth/password|users/\{id\}|catalogue)$'

status=0
# The admin: every operation (ticket actions mostly answer 403 or 404).
st_run admin "$token" \
  --exclude-path /api/v1/events/stream \
  --exclude-path-regex "$late" || status=1

# A department's handler, then the office's dispatcher (who decides the
# extension requests the handler made): the ticket lifecycle.
handler=$(login handler_water "$(user_password handler_water)")
st_run handler "$handler" --include-path-regex '^/api/v1/tickets/\{id\}/' || status=1
dispatcher=$(login dispatcher1 "$(user_password dispatcher1)")
st_run dispatcher "$dispatcher" --include-path-regex '^/api/v1/tickets' || status=1

# Last, throwaway users, made now while the admin token is good: an admin
# who edits the catalogue and other users (never themselves; a new password
# for the demo admin ends the token above), then one who changes their
# password and one who logs out.
st_admin=$(new_user st_admin admin)
st_admin_id=$(api GET /api/v1/auth/me "$st_admin" | field id)
st_password=$(new_user st_password agent)
st_logout=$(new_user st_logout agent)
EXCLUDED_USER=$st_admin_id st_run users "$st_admin" \
  --include-path-regex '^/api/v1/(users/\{id\}|catalogue)$' || status=1
st_run password "$st_password" --include-path /api/v1/auth/password || status=1
st_run logout "$st_logout" --include-path /api/v1/auth/logout || status=1

if ! kill -0 "$server" 2>/dev/null; then
  echo "schemathesis: the server died during the run" >&2
  status=1
fi
if grep -q "panicked" "$dir/server.log"; then
  echo "schemathesis: the server log holds panics:" >&2
  grep -A3 "panicked" "$dir/server.log" | head -40 >&2
  status=1
fi
exit "$status"
