#!/usr/bin/env bash
# The README's REST quickstart, run as written: the bash block between the
# lines <!-- quickstart:begin --> and <!-- quickstart:end --> of README.md
# goes through a non-interactive bash, as if pasted, against the running
# cluster (standing in for the one `AGENT_TASKS_KEEP=1 ./test/demo.sh`
# keeps), with PostgREST on a free port instead of 3000.  Then its output and
# the database are checked: PostgREST listened on 127.0.0.1 only and was
# ready, the task went from queued to completed with the agent's output, and
# no command failed.
#
# Harness contract (test/check.sh): run from the repo root as the caller,
# PG* name a running cluster (agent_tasks and pg_cron preloaded, workers
# serving database postgres); AT_SUITE_TMP is scratch space; the last line is
# "N passed, N failed" and the status is non-zero on failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
. test/need.sh
need psql curl jq node npm timeout

TMP="$(mktemp -d "${AT_SUITE_TMP:-/tmp}/quickstart.XXXXXX")"
export PGDATABASE=postgres
PASS=0 FAIL=0 QS_PID=""
ok()  { PASS=$((PASS + 1)); printf 'ok %d - %s\n' $((PASS + FAIL)) "$1"; }
nok() { FAIL=$((FAIL + 1)); printf 'not ok %d - %s\n' $((PASS + FAIL)) "$1"; [[ -n "${2:-}" ]] && printf '#   %s\n' "$2"; }
check() { # name actual expected
    if [[ "$2" == "$3" ]]; then ok "$1"; else nok "$1" "got '$2', expected '$3'"; fi
}
# SQL in the quickstart's account.
sql() { PGOPTIONS="-c agent_tasks.account=demo" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }

finish() {
    # The block leaves PostgREST running, as a pasted one would; it is in the
    # block's process group (timeout(1) makes one), which goes as a whole.
    [[ -n "$QS_PID" ]] && kill -TERM -- "-$QS_PID" 2>/dev/null
    sql "SELECT agent_tasks.unschedule_task('morning')" >/dev/null
    rm -rf "$TMP"
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    exit $((FAIL > 0))
}
trap finish EXIT

# --- the block, as the README has it ---------------------------------------------
awk '/^<!-- quickstart:end -->/ { inside = 0 }
     inside && !/^```/          { print }
     /^<!-- quickstart:begin -->/ { inside = 1; blocks++ }
     END { exit blocks != 1 }' README.md >"$TMP/quickstart.sh"
if [[ $? -ne 0 || ! -s "$TMP/quickstart.sh" ]]; then
    nok "README.md has one quickstart block between the markers"; exit 1
fi

# What the demo leaves: the extension, and its settings file for this cluster.
out="$(psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS agent_tasks CASCADE" 2>&1)" \
    || { nok "CREATE EXTENSION agent_tasks" "$out"; exit 1; }
printf 'export PGHOST=%q PGPORT=%q PGUSER=%q PGDATABASE=postgres\n' \
    "${PGHOST:-127.0.0.1}" "${PGPORT:-5432}" "${PGUSER:-postgres}" >"$TMP/demo.env"
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}
PORT="$(free_port)" || { nok "a free port for PostgREST"; exit 1; }

AGENT_TASKS_DEMO_ENV="$TMP/demo.env" PGRST_PORT="$PORT" TMPDIR="$TMP" \
    timeout -k 5 180 bash "$TMP/quickstart.sh" </dev/null >"$TMP/out" 2>&1 &
QS_PID=$!
wait "$QS_PID"
check "the block runs to its end" "$?" 0
out="$(cat "$TMP/out")"

# --- what it did ---------------------------------------------------------------------
# Listening sockets on the port (/proc/net/tcp*: local address, state 0A).
listeners="$(awk -v port="$(printf ':%04X' "$PORT")" \
    '$2 ~ port"$" && $4 == "0A" { print $2 }' /proc/net/tcp /proc/net/tcp6 | sort -u | paste -sd ' ')"
check "PostgREST listens on 127.0.0.1 only" "$listeners" "$(printf '0100007F:%04X' "$PORT")"
code="$(sed -n "s|^PostgREST on http://127.0.0.1:$PORT answers \([0-9]*\) .*|\1|p" <<<"$out")"
if [[ "$code" =~ ^[1-5][0-9][0-9]$ && "$code" != 503 ]]; then ok "the block waited until PostgREST was ready ($code)"
else nok "the block waited until PostgREST was ready" "it answered '$code'"; fi
TASK="$(sql "SELECT id FROM agent_tasks.tasks WHERE title = 'Add an About page' ORDER BY id DESC LIMIT 1")"
check "the block showed the new task queued" "$(grep -cx "{\"id\":\"$TASK\",\"status\":\"queued\"}" <<<"$out")" 1
check "the block showed it completed, with the agent's output" \
    "$(grep -cx '{"status":"completed","output":{"page":"/about","title":"Add an About page"}}' <<<"$out")" 1
check "in the database: completed by the agent writer" \
    "$(sql "SELECT status || ' ' || agent FROM agent_tasks.tasks WHERE id = '$TASK'")" \
    "completed writer"
check "its trail: created queued, then in_progress, completed" \
    "$(sql "SELECT string_agg(event || ':' || to_status, ' ' ORDER BY id) FROM agent_tasks.activities WHERE task_id = '$TASK' AND to_status IS NOT NULL")" \
    "created:queued status_changed:in_progress status_changed:completed"
check "a file attached" "$(sql "SELECT name || ' ' || size FROM agent_tasks.artifacts WHERE task_id = '$TASK'")" "notes.txt 6"
check "the morning schedule made" "$(sql "SELECT cron FROM agent_tasks.schedules WHERE name = 'morning'")" "0 8 * * *"
check "the OpenAPI paths listed" "$(grep -c '"/rpc/create_task"' <<<"$out")" 1
check "no command failed" "$(grep -E '^(ERROR|psql|curl|jq):|^npm ERR!|: line [0-9]+: |command not found' <<<"$out")" ""
((FAIL == 0)) || sed 's/^/#   | /' "$TMP/out" | head -n 100
