#!/usr/bin/env bash
# Webhook and callback delivery, end to end: the server's HTTP dispatcher
# POSTs to a local receiver (receiver.js, on 127.0.0.1) that verifies every
# signature with the npm standardwebhooks reference library.
#
# Harness contract (test/check.sh): run from the repo root as the caller,
# against the running cluster named by PGHOST/PGPORT (db postgres, which the
# dispatcher serves); the last line is "N passed, N failed".
# The suite sets, cluster-wide and for its duration (ALTER SYSTEM + reload):
#   agent_tasks.allow_insecure_loopback = on   (http://127.0.0.1 receivers)
#   agent_tasks.webhook_retry_scale = 0.1      (callback retries after 0.5 s, 1 s, 2 s)
# and gives its endpoints short retry_schedules.  It needs the server's HTTP
# dispatcher (library preloaded) and fails at once without it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
HERE="$(pwd)"
. ../need.sh
need psql node npm curl

export PGDATABASE=postgres
ACC="whtest_$$_$RANDOM"
PASS=0 FAIL=0
TMP="$(mktemp -d "${AT_SUITE_TMP:-/tmp}/webhooks.XXXXXX")"
RECEIVER_PID=""

note() { printf '# %s\n' "$*"; }
ok() { PASS=$((PASS + 1)); printf 'ok %d - %s\n' "$((PASS + FAIL))" "$1"; }
not_ok() { FAIL=$((FAIL + 1)); printf 'not ok %d - %s\n' "$((PASS + FAIL))" "$1"; [[ -n "${2:-}" ]] && printf '#   %s\n' "$2"; }
check() { # name actual expected
    if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1" "got '$2', expected '$3'"; fi
}

finish() {
    [[ -n "$RECEIVER_PID" ]] && kill "$RECEIVER_PID" 2>/dev/null && wait "$RECEIVER_PID" 2>/dev/null
    psql -X -q -At -c "ALTER SYSTEM RESET agent_tasks.webhook_retry_scale" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
    if [[ -n "${LOOPBACK_SET:-}" ]]; then
        psql -X -q -At -c "ALTER SYSTEM RESET agent_tasks.allow_insecure_loopback" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
    fi
    # leave no enabled endpoint pointing at a dead port
    psql -X -q -At -c "UPDATE agent_tasks_internal.webhook_endpoints SET enabled = false WHERE account = '$ACC'" >/dev/null 2>&1
    rm -rf "$TMP"
    echo "$PASS passed, $FAIL failed"
}
trap finish EXIT

# SQL as the test account; one value out.
sql() { PGOPTIONS="-c agent_tasks.account=$ACC" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
sql_su() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# --- setup -----------------------------------------------------------------

if [[ ! -d node_modules/standardwebhooks ]]; then
    npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1 || { cat "$TMP/npm.log"; echo "npm ci failed"; exit 1; }
fi
PGOPTIONS="-c client_min_messages=warning" sql_su "CREATE EXTENSION IF NOT EXISTS agent_tasks" >/dev/null || { echo "cannot create the extension"; exit 1; }

node receiver.js >"$TMP/receiver.out" 2>"$TMP/receiver.err" &
RECEIVER_PID=$!
for _ in $(seq 100); do [[ -s "$TMP/receiver.out" ]] && break; sleep 0.05; done
PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).port)' "$TMP/receiver.out")
CPORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).control_port)' "$TMP/receiver.out")
[[ -n "$PORT" && -n "$CPORT" ]] || { cat "$TMP/receiver.err"; echo "receiver did not start"; exit 1; }
BASE="http://127.0.0.1:$PORT"
note "receiver on $BASE (control $CPORT), account $ACC"

if sql_su "ALTER SYSTEM SET agent_tasks.allow_insecure_loopback = on" >/dev/null 2>&1; then
    LOOPBACK_SET=1
else
    note "no setting agent_tasks.allow_insecure_loopback (yet): relying on check_url accepting http://127.0.0.1"
fi
sql_su "ALTER SYSTEM SET agent_tasks.webhook_retry_scale = 0.1" >/dev/null
sql_su "SELECT pg_reload_conf()" >/dev/null
sleep 0.3

HAVE_DISPATCHER=$(sql_su "SELECT to_regprocedure('agent_tasks_internal.claim_http_runs(text,integer)') IS NOT NULL
                            AND EXISTS (SELECT 1 FROM agent_tasks.worker_status() WHERE worker ILIKE '%dispatcher%')")
if [[ "$HAVE_DISPATCHER" != t ]]; then
    echo "no HTTP dispatcher is running in the server (is agent_tasks preloaded?)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
note "delivering through the server's HTTP dispatcher"

# --- helpers for the receiver ----------------------------------------------

control() { curl -s -X "$1" "http://127.0.0.1:$CPORT$2" ${3:+-H 'content-type: application/json' --data "$3"}; }
configure() { control POST /config "$1" >/dev/null; }
# Evaluate a JS expression over the requests to a path ("d" is the array).
recv() { # path expr
    curl -s "http://127.0.0.1:$CPORT/deliveries?path=$1" \
        | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const d=JSON.parse(s);const r=eval(process.argv[1]);console.log(typeof r==="object"?JSON.stringify(r):String(r));})' "$2"
}
# Wait until a JS condition over a path's requests holds (or the timeout).
wait_recv() { # path expr timeout_s
    local deadline=$((SECONDS + ${3:-20}))
    while ((SECONDS < deadline)); do
        [[ "$(recv "$1" "$2")" == true ]] && return 0
        sleep 0.1
    done
    return 1
}
# Wait until an SQL condition is true.
wait_sql() { # sql timeout_s
    local deadline=$((SECONDS + ${2:-20}))
    while ((SECONDS < deadline)); do
        [[ "$(sql "$1")" == t ]] && return 0
        sleep 0.1
    done
    return 1
}
# A webhook endpoint at BASE/path with a fixed secret; prints its id.
SECRET1='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
endpoint() { # path events [schedule] [timeout]
    sql "SELECT agent_tasks.create_webhook('$BASE$1', '$2', '$SECRET1',
            retry_schedule => ${3:-NULL}, timeout => ${4:-'15 seconds'}) ->> 'id'"
}
# Only one endpoint of the account should receive each event: disable the others.
only() { sql "UPDATE agent_tasks_internal.webhook_endpoints SET enabled = (id = '$1') WHERE account = '$ACC'" >/dev/null; }
new_task() { sql "SELECT (agent_tasks.create_task('${1:-t}', callback_url => ${2:-NULL})).id"; }

# --- tests -------------------------------------------------------------------

check "signature test vector" \
    "$(sql_su "SELECT agent_tasks_internal.sign_webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{\"test\": 2432232314}')")" \
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='

# 1. success and every event of a lifecycle, each verified by the library
configure "{\"path\": \"/all\", \"secrets\": [\"$SECRET1\"]}"
EP_ALL=$(endpoint /all '{*}')
only "$EP_ALL"
T1=$(new_task lifecycle)
sql "SELECT agent_tasks.set_task_status('$T1', 'queued')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T1', 'in_progress')" >/dev/null
sql "SELECT agent_tasks.send_message('$T1', 'a question from a person')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T1', 'completed', output => '{\"answer\": 42}')" >/dev/null
sql "SELECT agent_tasks.send_feedback('$T1', 'like')" >/dev/null
EXPECTED='["task.completed","task.created","task.feedback","task.message","task.queued","task.started"]'
if wait_recv /all "d.length >= 6" 20; then ok "six events of a lifecycle arrive"; else not_ok "six events of a lifecycle arrive" "$(recv /all 'd.length')"; fi
check "event types" "$(recv /all 'd.map(x => x.body && x.body.type).sort()')" "$EXPECTED"
check "every request verified by standardwebhooks" "$(recv /all 'd.every(x => x.verified === true)')" true
check "payload shape: type, ISO-8601 timestamp, data.id" \
    "$(recv /all "d.every(x => typeof x.body.type === 'string' && /^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z\$/.test(x.body.timestamp) && x.body.data.id === '$T1')")" true
check "task.completed carries the output and previous_status" \
    "$(recv /all "JSON.stringify(d.filter(x => x.body.type === 'task.completed').map(x => [x.body.data.status, x.body.data.output, x.body.data.previous_status]))")" \
    '[["completed",{"answer":42},"in_progress"]]'
check "task.message carries the message" \
    "$(recv /all "d.filter(x => x.body.type === 'task.message').map(x => x.body.data.message.body).join()")" 'a question from a person'
check "headers: content-type, user-agent, webhook-id msg_<delivery>" \
    "$(recv /all "d.every(x => x.content_type === 'application/json' && /agent_tasks/.test(x.user_agent) && /^msg_[0-9a-f-]{36}\$/.test(x.webhook_id))")" true
wait_sql "SELECT count(*) = 6 FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_ALL' AND status = 'delivered'" 10
check "deliveries delivered after one attempt each" \
    "$(sql "SELECT string_agg(DISTINCT status || '/' || attempts, ',') FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_ALL'")" 'delivered/1'
check "attempts recorded with status code and latency" \
    "$(sql "SELECT bool_and(a.status = 'succeeded' AND a.status_code = 200 AND a.latency_ms >= 0 AND a.ended_at IS NOT NULL AND a.response_body = 'status 200')
              FROM agent_tasks.webhook_attempts a JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id WHERE d.webhook = '$EP_ALL'")" t
check "webhook-id is the delivery's" \
    "$(recv /all 'd.map(x => x.webhook_id).sort().join()')" \
    "$(sql "SELECT string_agg(webhook_id, ',' ORDER BY webhook_id COLLATE \"C\") FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_ALL'")"

# 2. event filter
configure "{\"path\": \"/filtered\", \"secrets\": [\"$SECRET1\"]}"
EP_F=$(endpoint /filtered '{task.failed}')
only "$EP_F"
T2=$(new_task filtered)
sql "SELECT agent_tasks.set_task_status('$T2', 'queued')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T2', 'in_progress')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T2', 'failed', error => '{\"message\": \"boom\"}')" >/dev/null
wait_recv /filtered "d.length >= 1" 10
sleep 0.5
check "only subscribed events are sent" "$(recv /filtered 'd.map(x => x.body.type).join()')" 'task.failed'

# 3. outbox: nothing for a rolled-back transaction, nothing before commit
configure "{\"path\": \"/outbox\", \"secrets\": [\"$SECRET1\"]}"
EP_O=$(endpoint /outbox '{task.created}')
only "$EP_O"
PGOPTIONS="-c agent_tasks.account=$ACC" psql -X -q -At -c "BEGIN" -c "SELECT agent_tasks.create_task('rolled back')" -c "ROLLBACK" >/dev/null
{ PGOPTIONS="-c agent_tasks.account=$ACC" psql -X -q -At -c "BEGIN" -c "SELECT agent_tasks.create_task('slow commit')" \
    -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null; } &
SLOW=$!
sleep 1
check "no delivery before commit" "$(recv /outbox 'd.length')" 0
wait $SLOW
if wait_recv /outbox "d.length >= 1" 10; then ok "delivered after commit"; else not_ok "delivered after commit"; fi
sleep 0.3
check "nothing for the rolled-back task" "$(recv /outbox 'd.map(x => x.body.data.title).join()')" 'slow commit'

# 4. retry after 500, same webhook-id on every attempt
configure "{\"path\": \"/e500\", \"secrets\": [\"$SECRET1\"], \"responses\": [{\"status\": 500}, {\"status\": 502}]}"
EP_500=$(endpoint /e500 '{task.created}' "'{0.2 s, 0.2 s, 0.2 s}'")
only "$EP_500"
new_task retry500 >/dev/null
if wait_recv /e500 "d.length >= 3" 15; then ok "500, 502, then 200"; else not_ok "500, 502, then 200" "$(recv /e500 'd.map(x => x.status)')"; fi
check "answers seen" "$(recv /e500 'd.map(x => x.status).join()')" '500,502,200'
check "one webhook-id across retries" "$(recv /e500 'new Set(d.map(x => x.webhook_id)).size')" 1
check "timestamps per attempt, signature valid each time" "$(recv /e500 'd.every(x => x.verified)')" true
wait_sql "SELECT status = 'delivered' FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_500'" 5
check "attempts: codes and outcome" \
    "$(sql "SELECT string_agg(a.status_code || ':' || a.status, ',' ORDER BY a.attempt) FROM agent_tasks.webhook_attempts a
              JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id WHERE d.webhook = '$EP_500'")" \
    '500:failed,502:failed,200:succeeded'

# 5. 410 disables the endpoint
configure "{\"path\": \"/gone\", \"secrets\": [\"$SECRET1\"], \"default\": {\"status\": 410}}"
EP_410=$(endpoint /gone '{task.created}' "'{0.2 s, 0.2 s}'")
only "$EP_410"
T5=$(new_task gone)
wait_sql "SELECT NOT enabled FROM agent_tasks.webhook_endpoints WHERE id = '$EP_410'" 10
check "410 disables the endpoint" \
    "$(sql "SELECT enabled || ' ' || disabled_reason FROM agent_tasks.webhook_endpoints WHERE id = '$EP_410'")" \
    'false the receiver answered 410 Gone'
check "the delivery failed after one attempt" \
    "$(sql "SELECT status || ' ' || attempts || ' ' || last_status_code FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_410'")" 'failed 1 410'
check "logged on the task" \
    "$(sql "SELECT count(*) FROM agent_tasks.activities WHERE task_id = '$T5' AND event = 'webhook_failed'")" 1
sql "UPDATE agent_tasks_internal.webhook_endpoints SET enabled = false WHERE account = '$ACC'" >/dev/null
new_task after-gone >/dev/null
sleep 0.5
check "no new deliveries to a disabled endpoint" "$(recv /gone 'd.length')" 1

# 6. Retry-After is honoured
configure "{\"path\": \"/ra\", \"secrets\": [\"$SECRET1\"], \"responses\": [{\"status\": 503, \"retry_after\": 2}]}"
EP_RA=$(endpoint /ra '{task.created}' "'{0.1 s, 0.1 s}'")
only "$EP_RA"
new_task retry-after >/dev/null
if wait_recv /ra "d.length >= 2" 15; then ok "retried after 503 + Retry-After"; else not_ok "retried after 503 + Retry-After"; fi
check "second attempt waited for Retry-After: 2 (not the 0.1 s schedule)" \
    "$(recv /ra '(d[1].arrived_ms - d[0].arrived_ms) >= 1900')" true

# 7. timeouts: a receiver slower than the endpoint's timeout
configure "{\"path\": \"/slow\", \"secrets\": [\"$SECRET1\"], \"responses\": [{\"status\": 200, \"delay_ms\": 4000}]}"
EP_SLOW=$(endpoint /slow '{task.created}' "'{0.2 s, 0.2 s}'" "'2 seconds'")
only "$EP_SLOW"
new_task slow >/dev/null
if wait_sql "SELECT status = 'delivered' FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_SLOW'" 20; then
    ok "delivered after a timeout"; else not_ok "delivered after a timeout"; fi
check "first attempt timed out (no status code, an error), second succeeded" \
    "$(sql "SELECT string_agg(coalesce(a.status_code::text, 'none') || ':' || a.status || ':' || (a.error IS NOT NULL), ',' ORDER BY a.attempt)
              FROM agent_tasks.webhook_attempts a JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id WHERE d.webhook = '$EP_SLOW'")" \
    'none:failed:true,200:succeeded:false'
check "timed-out attempt's latency near the timeout" \
    "$(sql "SELECT latency_ms BETWEEN 1500 AND 3900 FROM agent_tasks.webhook_attempts a JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id
              WHERE d.webhook = '$EP_SLOW' AND a.attempt = 1")" t

# 8. receiver down, then back up: everything delivered, ids unchanged
configure "{\"path\": \"/down\", \"secrets\": [\"$SECRET1\"]}"
EP_DOWN=$(endpoint /down '{task.created}' "'{0.3 s, 0.5 s, 1 s, 1 s, 2 s, 2 s, 2 s, 2 s}'")
only "$EP_DOWN"
control POST /down >/dev/null
for i in 1 2 3 4 5; do new_task "down-$i" >/dev/null; done
if wait_sql "SELECT count(*) = 5 AND min(attempts) >= 2 FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DOWN'" 15; then
    ok "attempts fail while the receiver is down"; else not_ok "attempts fail while the receiver is down"; fi
check "failed attempts recorded with an error and no status code" \
    "$(sql "SELECT bool_and(a.status_code IS NULL AND a.error IS NOT NULL) FROM agent_tasks.webhook_attempts a
              JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id WHERE d.webhook = '$EP_DOWN' AND a.status = 'failed'")" t
control POST /up >/dev/null
if wait_sql "SELECT bool_and(status = 'delivered') FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DOWN'" 20; then
    ok "everything delivered once the receiver is back"; else not_ok "everything delivered once the receiver is back"; fi
check "each event's webhook-id as before" \
    "$(recv /down 'Array.from(new Set(d.map(x => x.webhook_id))).sort().join()')" \
    "$(sql "SELECT string_agg(webhook_id, ',' ORDER BY webhook_id COLLATE \"C\") FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DOWN'")"
check "all five verified" "$(recv /down 'd.filter(x => x.verified).length')" 5

# 9. secret rotation: both secrets sign for 24 h
configure "{\"path\": \"/rot\", \"secrets\": [\"$SECRET1\"]}"
EP_ROT=$(endpoint /rot '{task.created}')
only "$EP_ROT"
SECRET2=$(sql "SELECT agent_tasks.rotate_webhook_secret('$EP_ROT')")
check "rotation returns a new whsec_ secret" "$([[ "$SECRET2" =~ ^whsec_[A-Za-z0-9+/]{32}$ ]] && echo yes)" yes
configure "{\"path\": \"/rot\", \"secrets\": [\"$SECRET1\", \"$SECRET2\"]}"
new_task rotated >/dev/null
wait_recv /rot "d.length >= 1" 10
check "two signatures in webhook-signature" "$(recv /rot 'd[0].webhook_signature.split(" ").length')" 2
check "the receiver verifies with the old and with the new secret" "$(recv /rot 'd[0].verified_with.join()')" '0,1'
sql_su "UPDATE agent_tasks_internal.webhook_secrets SET expires_at = now() - interval '1 second'
         WHERE endpoint_id = '$EP_ROT' AND expires_at IS NOT NULL" >/dev/null
new_task after-expiry >/dev/null
wait_recv /rot "d.length >= 2" 10
check "after 24 h only the new secret signs" "$(recv /rot 'd[1].verified_with.join()')" '1'

# 10. exhausted deliveries are failed and logged on the task
configure "{\"path\": \"/dead\", \"secrets\": [\"$SECRET1\"], \"default\": {\"status\": 500}}"
EP_DEAD=$(endpoint /dead '{task.created}' "'{0.1 s, 0.1 s}'")
only "$EP_DEAD"
T10=$(new_task exhausted)
if wait_sql "SELECT status = 'failed' FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DEAD'" 15; then
    ok "exhausted delivery failed"; else not_ok "exhausted delivery failed"; fi
check "three attempts, the last error kept" \
    "$(sql "SELECT attempts || ' ' || last_status_code || ' ' || last_error FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DEAD'")" '3 500 HTTP 500'
check "activity webhook_failed on the task" \
    "$(sql "SELECT data ->> 'attempts' FROM agent_tasks.activities WHERE task_id = '$T10' AND event = 'webhook_failed'")" 3

# 11. redeliver: same id, fresh schedule
configure "{\"path\": \"/dead\", \"secrets\": [\"$SECRET1\"]}"
DEAD_ID=$(sql "SELECT id FROM agent_tasks.webhook_deliveries WHERE webhook = '$EP_DEAD'")
sql "SELECT agent_tasks.redeliver('$DEAD_ID')" >/dev/null
if wait_sql "SELECT status = 'delivered' AND attempts = 4 FROM agent_tasks.webhook_deliveries WHERE id = '$DEAD_ID'" 10; then
    ok "redelivered"; else not_ok "redelivered"; fi
check "redelivery keeps the webhook-id" "$(recv /dead 'new Set(d.map(x => x.webhook_id)).size')" 1

# 12. per-task callback_url: success and failure payloads, retries
sql "UPDATE agent_tasks_internal.webhook_endpoints SET enabled = false WHERE account = '$ACC'" >/dev/null
configure '{"path": "/cb", "responses": [{"status": 500}]}'
T12=$(new_task callback "'$BASE/cb'")
sql "SELECT agent_tasks.set_task_status('$T12', 'queued')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T12', 'in_progress')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T12', 'completed', output => '{\"created\": [\"docs/a.md\"], \"modified\": [\"docs/b.md\"], \"deleted\": [\"docs/c.md\"], \"commit\": \"9fceb02\"}')" >/dev/null
if wait_recv /cb "d.length >= 2" 15; then ok "callback retried after 500"; else not_ok "callback retried after 500"; fi
check "callback success payload" \
    "$(recv /cb "JSON.stringify([d[1].body.status, d[1].body.task_id === '$T12', d[1].body.created, d[1].body.modified, d[1].body.deleted, d[1].body.commit, /Z\$/.test(d[1].body.timestamp)])")" \
    '["succeeded",true,["docs/a.md"],["docs/b.md"],["docs/c.md"],"9fceb02",true]'
check "callback retry waited ~5 s x scale 0.1" "$(recv /cb '(d[1].arrived_ms - d[0].arrived_ms) >= 400')" true
check "callback has a stable webhook-id, no signature" "$(recv /cb 'd[0].webhook_id === d[1].webhook_id && d[1].webhook_signature === null')" true
wait_sql "SELECT count(*) = 1 FROM agent_tasks.activities WHERE task_id = '$T12' AND event = 'callback_delivered'" 5
check "callback_delivered on the task's trail" \
    "$(sql "SELECT count(*) FROM agent_tasks.activities WHERE task_id = '$T12' AND event = 'callback_delivered'")" 1
configure '{"path": "/cbfail"}'
T13=$(new_task callback-fail "'$BASE/cbfail'")
sql "SELECT agent_tasks.set_task_status('$T13', 'queued')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T13', 'in_progress')" >/dev/null
sql "SELECT agent_tasks.set_task_status('$T13', 'failed', 'rejected', error => '{\"message\": \"the repository is archived\"}')" >/dev/null
wait_recv /cbfail "d.length >= 1" 10
check "callback failure payload" \
    "$(recv /cbfail "JSON.stringify([d[0].body.status, d[0].body.error, d[0].body.task_id === '$T13'])")" \
    '["failed",{"message":"the repository is archived"},true]'

# Everything the receiver got was signed correctly (or was an unsigned callback).
check "no request failed verification" "$(recv '' 'd.filter(x => x.verified === false).length')" 0
