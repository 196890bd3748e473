#!/usr/bin/env bash
# End-to-end tests of the HTTP dispatcher: http agents (sync, async with run
# tokens, retries, timeouts, caps), openai agents (with and without JSON
# Schema, errors, schema-breaking replies, usage and budgets), SSRF refusals
# at registration and at connect time, plain http allowed by
# agent_tasks.http_plain_allowed (and refused where it does not apply),
# stopping a request in flight, and 100+ requests in flight at once.
#
# Harness contract (test/check.sh): run from the repo root against a running
# cluster (PGHOST, PGPORT, PGUSER=postgres) whose agent_tasks workers serve
# database postgres; the last line is "N passed, N failed".  Settings it
# changes (ALTER SYSTEM) are reset on exit.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../need.sh"
need psql node
TMP="${AT_SUITE_TMP:-$(mktemp -d)}"
ACCOUNT="http_test_$$_$RANDOM"
export PGDATABASE=postgres
export PGOPTIONS="-c agent_tasks.account=$ACCOUNT -c agent_tasks.email=tester@example.com"

PASS=0 FAIL=0
ok()   { PASS=$((PASS + 1)); printf 'ok %d - %s\n' $((PASS + FAIL)) "$1"; }
nok()  { FAIL=$((FAIL + 1)); printf 'not ok %d - %s\n' $((PASS + FAIL)) "$1"; shift; printf '#   %s\n' "$@"; }
check() { # name actual expected
    if [[ "$2" == "$3" ]]; then ok "$1"; else nok "$1" "got:      $2" "expected: $3"; fi
}
check_match() { # name actual regex
    if [[ "$2" =~ $3 ]]; then ok "$1"; else nok "$1" "got:      $2" "expected: /$3/"; fi
}

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# The SQLSTATE a statement fails with (empty when it succeeds).
sqlstate() { psql -X -q -At -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 >/dev/null | grep -o 'ERROR: *[0-9A-Z]\{5\}' | grep -o '[0-9A-Z]\{5\}$'; }
# Poll until a query returns t (timeout in tenths of a second).
wait_for() { # sql tenths
    local i
    for ((i = 0; i < ${2:-150}; i++)); do
        [[ "$(sql "$1")" == t ]] && return 0
        sleep 0.1
    done
    return 1
}
wait_done() { # task [seconds]
    sql "SELECT (agent_tasks.wait_task('$1', '${2:-20} seconds')).status"
}
srv() { node "$HERE/ctl.js" "$PORT" "$@"; }

SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    psql -X -q -c "ALTER SYSTEM RESET agent_tasks.allow_insecure_loopback" \
        -c "ALTER SYSTEM RESET agent_tasks.http_resolve" \
        -c "ALTER SYSTEM RESET agent_tasks.http_plain_allowed" \
        -c "ALTER SYSTEM RESET agent_tasks.http_max_in_flight" \
        -c "ALTER SYSTEM RESET agent_tasks.poll_interval" \
        -c "SELECT pg_reload_conf()" >/dev/null 2>&1
    [[ -n "${AT_SUITE_TMP:-}" ]] || rm -rf "$TMP"
}
trap cleanup EXIT

finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    exit $((FAIL > 0))
}

# --- setup --------------------------------------------------------------------
node "$HERE/server.js" >"$TMP/port" 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 50); do [[ -s "$TMP/port" ]] && break; sleep 0.1; done
PORT="$(head -n1 "$TMP/port")"
if [[ -z "$PORT" ]]; then nok "test server starts" "$(cat "$TMP/server.err")"; finish; fi
BASE="http://127.0.0.1:$PORT"

out="$(psql -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION IF NOT EXISTS agent_tasks" \
    -c "ALTER SYSTEM SET agent_tasks.allow_insecure_loopback = on" \
    -c "ALTER SYSTEM SET agent_tasks.http_resolve = 'rebind.test:$PORT:127.0.0.1, plain.test:$PORT:127.0.0.1'" \
    -c "ALTER SYSTEM SET agent_tasks.http_max_in_flight = 256" \
    -c "ALTER SYSTEM SET agent_tasks.poll_interval = '200ms'" \
    -c "SELECT pg_reload_conf()" 2>&1)" || { nok "setup" "$out"; finish; }
sleep 0.5
check "the dispatcher is running" \
    "$(sql "SELECT count(*) FROM agent_tasks.worker_status() WHERE worker LIKE 'dispatcher%'")" 1
check "allow_insecure_loopback is on for new sessions" "$(sql "SHOW agent_tasks.allow_insecure_loopback")" on

agent() { # name kind target [extra create_agent arguments]
    local name="$1" kind="$2" target="$3"; shift 3
    sql "SELECT name FROM agent_tasks.create_agent('$name', '$kind', '$target'${1:+, $1})"
}
task() { # title agent [extra create_task arguments]
    sql "SELECT id FROM agent_tasks.create_task('$1', agent => '$2', auto_process => true${3:+, $3})"
}
last_run() { # task column
    sql "SELECT $2 FROM agent_tasks.runs WHERE task_id = '$1' ORDER BY id DESC LIMIT 1"
}
request_of() { # task expression-of-r: about the last request the server got for the task
    srv GET /requests "(r => $2)(d.filter(r => r.body && r.body.task && r.body.task.id === '$1').pop() || {})"
}

# --- http agent: synchronous ------------------------------------------------------
agent h-sync http "$BASE/agent/sync" "config => '{\"headers\": {\"X-Team\": \"blue\", \"Bad Header\": \"x\", \"X-Inject\": \"a\\r\\nB: c\"}}'" >/dev/null
check "set_agent_secret stores a secret" "$(sql "SELECT agent_tasks.set_agent_secret('h-sync', 'sekrit-token')")" t
t="$(task 'Write the about page' h-sync "prompt => 'Team section please', context => '{\"site\": \"acme.dev\"}'")"
check "sync: 2xx with JSON completes the task" "$(wait_done "$t")" completed
check "sync: output is the agent's" "$(sql "SELECT output FROM agent_tasks.tasks WHERE id = '$t'")" \
    '{"echo": "Write the about page", "attempt": 1}'
check "sync: bearer secret sent" "$(request_of "$t" "r.headers.authorization")" "Bearer sekrit-token"
check "sync: configured header sent" "$(request_of "$t" "r.headers['x-team']")" blue
check "sync: invalid headers dropped" \
    "$(request_of "$t" "r.headers['x-inject'] === undefined && r.headers['bad header'] === undefined")" true
check "sync: body has task, run, messages, run_token, callback" \
    "$(request_of "$t" "Object.keys(r.body).sort().join(',')")" "callback,messages,run,run_token,task"
check_match "sync: the run token is rt_ + 43 characters" "$(request_of "$t" "r.body.run_token")" '^rt_[A-Za-z0-9_-]{43}$'
check "sync: task context sent" "$(request_of "$t" "r.body.task.context.site")" acme.dev
check "sync: no secret in the readable agent view" \
    "$(sql "SELECT count(*) FROM agent_tasks.agents WHERE config::text LIKE '%sekrit%' OR target LIKE '%sekrit%'")" 0
check "sync: no token or secret in activities" \
    "$(sql "SELECT count(*) FROM agent_tasks.activities WHERE task_id = '$t' AND (data::text LIKE '%rt\\_%' OR actor LIKE '%rt\\_%' OR data::text LIKE '%sekrit%')")" 0

# --- http agent: answers of the sql-agent kind ---------------------------------------
agent h-clarify http "$BASE/agent/clarify" >/dev/null
t="$(task 'Paint the shed' h-clarify)"
check "clarify: needs_clarification" "$(wait_done "$t")" needs_clarification
check "clarify: the question is an agent message" \
    "$(sql "SELECT body FROM agent_tasks.messages WHERE task_id = '$t' AND role = 'agent'")" "Which colour?"
agent h-reject http "$BASE/agent/reject" >/dev/null
t="$(task 'Impossible' h-reject)"
check "reject: failed" "$(wait_done "$t")" failed
check "reject: reason rejected, agent's error" \
    "$(sql "SELECT status_reason || ' ' || (error ->> 'message') FROM agent_tasks.tasks WHERE id = '$t'")" "rejected cannot do that"

# --- http agent: asynchronous with the run token ----------------------------------------
agent h-async http "$BASE/agent/async" >/dev/null
t="$(task 'Long job' h-async)"
wait_for "SELECT phase = 'accepted' FROM agent_tasks.runs WHERE task_id = '$t'" \
    && ok "async: 202 leaves the run in progress, phase accepted" \
    || nok "async: 202 leaves the run in progress, phase accepted" "$(sql "SELECT status, phase, error FROM agent_tasks.runs WHERE task_id = '$t'")"
run="$(last_run "$t" id)"
token="$(request_of "$t" "r.body.run_token")"
check "async: the callback names the run and the token" \
    "$(request_of "$t" "r.body.callback.run === r.body.run.id && r.body.callback.worker === r.body.run_token")" true
check "async: a wrong token is refused (PT403)" "$(sqlstate "SELECT agent_tasks.complete_run('$run', '{}', worker => 'rt_wrong')")" PT403
check "async: no token is refused (PT403)" "$(sqlstate "SELECT agent_tasks.complete_run('$run', '{}')")" PT403
check "async: the dispatcher's worker name is refused (PT403)" "$(sqlstate "SELECT agent_tasks.complete_run('$run', '{}', worker => 'dispatcher')")" PT403
check "async: report_progress with the token" \
    "$(sql "SELECT phase FROM agent_tasks.report_progress('$run', 'drafting', 'half way', worker => '$token')")" drafting
check "async: complete_run with the token" \
    "$(sql "SELECT status FROM agent_tasks.complete_run('$run', '{\"pages\": 3}', worker => '$token')")" completed
check "async: the task is completed with that output" \
    "$(sql "SELECT status || ' ' || output::text FROM agent_tasks.tasks WHERE id = '$t'")" 'completed {"pages": 3}'
check "async: the token of a finished run is refused (PT409)" \
    "$(sqlstate "SELECT agent_tasks.complete_run('$run', '{}', worker => '$token')")" PT409
t="$(task 'Long job 2' h-async)"
wait_for "SELECT phase = 'accepted' FROM agent_tasks.runs WHERE task_id = '$t'" >/dev/null
run="$(last_run "$t" id)"
token="$(request_of "$t" "r.body.run_token")"
check "async: another run's token is refused (PT403)" \
    "$(sqlstate "SELECT agent_tasks.complete_run('$run', '{}', worker => '$(request_of "$(sql "SELECT id FROM agent_tasks.tasks WHERE title = 'Long job'")" "r.body.run_token")')")" PT403
check "async: heartbeat with the token sets the lease" \
    "$(sql "SELECT agent_tasks.heartbeat_run('$run', '$token', '1 second') > now()")" t
sleep 1.3
check "async: a token whose lease expired is refused (PT409)" \
    "$(sqlstate "SELECT agent_tasks.fail_run('$run', 'late', worker => '$token')")" PT409

# --- http agent: failures, retries, timeouts, caps ----------------------------------------
agent h-500 http "$BASE/agent/fail500" "max_attempts => 2, backoff_base => '100 ms', backoff_max => '200 ms'" >/dev/null
t="$(task 'Always 500' h-500)"
check "500: retried, then failed" "$(wait_done "$t")" failed
check "500: two attempts, both HTTP 500" \
    "$(sql "SELECT string_agg(attempt || ':' || status || ':' || (error ->> 'status_code'), ' ' ORDER BY id) FROM agent_tasks.runs WHERE task_id = '$t'")" \
    "1:failed:500 2:failed:500"
check "500: reason max_attempts, message names the status" \
    "$(sql "SELECT status_reason || ' / ' || (error ->> 'message') FROM agent_tasks.tasks WHERE id = '$t'")" \
    "max_attempts / the agent answered HTTP 500"
agent h-flaky http "$BASE/agent/flaky" "max_attempts => 3, backoff_base => '100 ms', backoff_max => '200 ms'" >/dev/null
t="$(task 'Flaky' h-flaky)"
check "flaky: 500 then 200 completes on attempt 2" \
    "$(wait_done "$t") $(last_run "$t" attempt)" "completed 2"
agent h-slow http "$BASE/agent/slow?ms=3000" "timeout => '1 second', max_attempts => 1" >/dev/null
t="$(task 'Too slow' h-slow)"
check "timeout: failed with reason timeout" "$(wait_done "$t") $(sql "SELECT status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "failed timeout"
check_match "timeout: the error says so" "$(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" '^timed out after 1000 ms'
agent h-notjson http "$BASE/agent/notjson" >/dev/null
t="$(task 'Not JSON' h-notjson)"
check "2xx without JSON: invalid_output" "$(wait_done "$t") $(sql "SELECT status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "failed invalid_output"
agent h-redirect http "$BASE/agent/redirect" "max_attempts => 1" >/dev/null
t="$(task 'Redirect' h-redirect)"
check "redirects are not followed" "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed the agent answered HTTP 302"
agent h-big http "$BASE/agent/big" "config => '{\"max_response_bytes\": 65536}'" >/dev/null
t="$(task 'Big' h-big)"
check "response body capped (64 kB): invalid_output" \
    "$(wait_done "$t") $(sql "SELECT status_reason || ' / ' || (error ->> 'message') FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed invalid_output / the response is larger than 65536 bytes (config.max_response_bytes)"
agent h-down http "http://127.0.0.1:1/agent" "max_attempts => 1" >/dev/null
t="$(task 'Nobody home' h-down)"
check_match "connection refused: failed with the libcurl error" \
    "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" "^failed Couldn't connect"

# --- SSRF ------------------------------------------------------------------------------------
while IFS='|' read -r url reason; do
    got="$(psql -X -q -At -c '\set VERBOSITY default' -c "SELECT agent_tasks.create_agent('ssrf-x', 'http', '$url')" 2>&1 | head -n1)"
    check "registration refuses $url" "$got" "ERROR:  target is not allowed: $reason"
done <<'EOF'
https://10.1.2.3/a|address 10.1.2.3 is in a blocked range (10.0.0.0/8, private network)
https://169.254.169.254/latest/meta-data|address 169.254.169.254 is in a blocked range (169.254.0.0/16, link-local, cloud metadata)
https://167772161/|address 167772161 (10.0.0.1) is in a blocked range (10.0.0.0/8, private network)
https://012.0.0.1/|address 012.0.0.1 (10.0.0.1) is in a blocked range (10.0.0.0/8, private network)
https://0xa9.0xfe.0xa9.0xfe/|address 0xa9.0xfe.0xa9.0xfe (169.254.169.254) is in a blocked range (169.254.0.0/16, link-local, cloud metadata)
https://[::ffff:10.0.0.1]/|address ::ffff:10.0.0.1 (10.0.0.1) is in a blocked range (10.0.0.0/8, private network)
https://[fd00::1]/|address fd00::1 is in a blocked range (fc00::/7, unique local)
https://user:pw@example.com/|URLs with user information (user:password@host) are not allowed
http://example.com/|only https URLs are allowed (plain http only to the ranges and host names of agent_tasks.http_plain_allowed)
EOF
agent h-rebind http "https://rebind.test:$PORT/agent/sync" "max_attempts => 1" >/dev/null
t="$(task 'Rebinding' h-rebind)"
check "connect time: a name resolving to 127.0.0.1 is refused" \
    "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed refused to connect to rebind.test:$PORT: address 127.0.0.1 is in a blocked range (127.0.0.0/8, loopback)"
check "connect time: the server never saw it" "$(request_of "$t" "r.path === undefined")" true

# --- plain http on named private networks ----------------------------------------------------
# Loopback stands for the private network: without allow_insecure_loopback,
# only http_plain_allowed lets plain http reach the test server.
reload_settings() { # ALTER SYSTEM statements...
    local args=() a
    for a in "$@"; do args+=(-c "$a"); done
    psql -X -q "${args[@]}" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
}
reload_settings "ALTER SYSTEM SET agent_tasks.allow_insecure_loopback = off" \
    "ALTER SYSTEM SET agent_tasks.http_plain_allowed = '127.0.0.0/8, plain.test'"
check "http_plain_allowed reaches new sessions" "$(sql "SHOW agent_tasks.http_plain_allowed")" "127.0.0.0/8, plain.test"
agent p-name http "http://plain.test:$PORT/agent/sync" "max_attempts => 1" >/dev/null
agent p-addr http "http://127.0.0.1:$PORT/agent/sync" "max_attempts => 1" >/dev/null
t="$(task 'Plain by name' p-name)"
check "plain http to a listed name (resolving into a listed range) completes" "$(wait_done "$t")" completed
check "plain http: the server got the request" "$(request_of "$t" "r.path")" /agent/sync
t="$(task 'Plain by address' p-addr)"
check "plain http to an address in a listed range completes" "$(wait_done "$t")" completed
check_match "plain http to a name not listed is refused, the hint names the setting" \
    "$(psql -X -q -At -c '\set VERBOSITY default' -c "SELECT agent_tasks.create_agent('p-other', 'http', 'http://other.test:$PORT/agent/sync')" 2>&1 | tr '\n' ' ')" \
    "ERROR: +target is not allowed: only https URLs are allowed \(plain http only to .*agent_tasks.http_plain_allowed\).*HINT: .*plain http to private ranges and host names \(agent_tasks.http_plain_allowed\)"
reload_settings "ALTER SYSTEM SET agent_tasks.http_plain_allowed = '10.99.0.0/16, plain.test'"
t="$(task 'Plain, resolved elsewhere' p-name)"
check "connect time: a listed name resolving outside the listed ranges is refused" \
    "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed refused to connect to plain.test:$PORT: plain http to address 127.0.0.1, which is not in a range of agent_tasks.http_plain_allowed"
check "connect time: the server never saw it" "$(request_of "$t" "r.path === undefined")" true
# The same change while a request is in flight: the connection to plain.test
# made before it is still cached then, and must not carry the next request.
reload_settings "ALTER SYSTEM SET agent_tasks.http_plain_allowed = '127.0.0.0/8, plain.test'"
t="$(task 'Plain by name again' p-name)"
check "plain http to a listed name completes again once its range is listed" "$(wait_done "$t")" completed
agent p-slow http "http://127.0.0.1:$PORT/agent/slow?ms=4000" "max_attempts => 1" >/dev/null
slow="$(task 'Plain, slow' p-slow)"
for _ in $(seq 50); do [[ "$(request_of "$slow" "r.path")" == /agent/slow ]] && break; sleep 0.1; done
reload_settings "ALTER SYSTEM SET agent_tasks.http_plain_allowed = '10.99.0.0/16, plain.test'"
t="$(task 'Plain, resolved elsewhere, one in flight' p-name)"
check "connect time: with a request in flight, a cached connection is not reused after the change" \
    "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed refused to connect to plain.test:$PORT: plain http to address 127.0.0.1, which is not in a range of agent_tasks.http_plain_allowed"
check "connect time: the server never saw that one" "$(request_of "$t" "r.path === undefined")" true
check "the request in flight at the change completes" "$(wait_done "$slow")" completed
reload_settings "ALTER SYSTEM RESET agent_tasks.http_plain_allowed" \
    "ALTER SYSTEM SET agent_tasks.allow_insecure_loopback = on"

# --- openai agent ------------------------------------------------------------------------------
agent o-chat openai "$BASE/v1" "config => '{\"model\": \"test-model\", \"system_prompt\": \"You are terse.\", \"params\": {\"temperature\": 0}}', budget_tokens => 40" >/dev/null
check "set_agent_secret for an openai agent" "$(sql "SELECT agent_tasks.set_agent_secret('o-chat', 'sk-test')")" t
chat_req() { # task-title expression-of-r
    srv GET /requests "(r => $2)(d.filter(r => r.path === '/v1/chat/completions' && r.body.messages.some(m => String(m.content).startsWith('$1'))).pop() || {})"
}
t="$(task 'Say hello' o-chat "prompt => 'to the team', context => '{\"lang\": \"en\"}'")"
check "openai: completed" "$(wait_done "$t")" completed
check "openai: the reply is the output" "$(sql "SELECT output FROM agent_tasks.tasks WHERE id = '$t'")" '{"content": "Echo: Say hello"}'
check "openai: the reply is an agent message" \
    "$(sql "SELECT author || ': ' || body FROM agent_tasks.messages WHERE task_id = '$t' AND role = 'agent'")" "agent:o-chat: Echo: Say hello"
check "openai: usage recorded on the run" "$(last_run "$t" "tokens || ' ' || (usage ->> 'prompt_tokens')")" "15 11"
check "openai: request has model, system prompt, task text, params" \
    "$(chat_req 'Say hello' "[r.body.model, r.body.messages[0].content, r.body.messages[1].content.replace(/\n/g, ' '), r.body.temperature].join('|')")" \
    'test-model|You are terse.|Say hello  to the team  Context: {"lang": "en"}|0'
check "openai: no response_format without a schema" "$(chat_req 'Say hello' "r.body.response_format === undefined")" true
schema='{"type": "object", "required": ["title", "score"], "properties": {"title": {"type": "string"}, "score": {"type": "integer", "minimum": 1}}, "additionalProperties": false}'
t="$(task 'Rate the page' o-chat "output_schema => '$schema'")"
check "openai + schema: completed with a valid object" \
    "$(wait_done "$t") $(sql "SELECT output FROM agent_tasks.tasks WHERE id = '$t'")" 'completed {"score": 42, "title": "xxxxx"}'
check "openai + schema: response_format json_schema sent" \
    "$(chat_req 'Rate the page' "r.body.response_format.type + ' ' + r.body.response_format.json_schema.schema.required.join(',')")" \
    "json_schema title,score"
t="$(task 'Rate it [break]' o-chat "output_schema => '$schema'")"
check "openai: a reply that breaks the schema is invalid_output" \
    "$(wait_done "$t") $(sql "SELECT status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "failed invalid_output"
check_match "openai: the schema errors are recorded" "$(sql "SELECT error -> 'errors' FROM agent_tasks.tasks WHERE id = '$t'")" 'required property'
check "budget: usage counts against the agent's budget (3 x 15 tokens)" \
    "$(sql "SELECT used_tokens FROM agent_tasks.queue_stats WHERE agent = 'o-chat'")" 45
t="$(task 'Over budget' o-chat)"
wait_for "SELECT status = 'on_hold' FROM agent_tasks.tasks WHERE id = '$t'" 50 >/dev/null
check "budget: the next task waits on_hold (budget_exceeded)" \
    "$(sql "SELECT status || ' ' || status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "on_hold budget_exceeded"
agent o-plain openai "$BASE/v1/chat/completions/" "config => '{\"model\": \"m2\"}', max_attempts => 2, backoff_base => '100 ms', backoff_max => '200 ms', timeout => '1 second'" >/dev/null
check "set_agent_secret again" "$(sql "SELECT agent_tasks.set_agent_secret('o-plain', 'sk-test')")" t
t="$(task 'Fail [error]' o-plain)"
check "openai: an error reply is retried, then fails with its message" \
    "$(wait_done "$t") $(sql "SELECT status_reason || ' / ' || (error ->> 'message') FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed max_attempts / the agent answered HTTP 500: The server had an error while processing your request"
t="$(task 'JSON please [notjson]' o-plain "output_schema => '$schema'")"
check "openai: text where JSON was asked is invalid_output" \
    "$(wait_done "$t") $(sql "SELECT status_reason || ' / ' || (error ->> 'message') FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed invalid_output / the reply is not JSON, as the task's JSON Schema requires"
t="$(task 'No [refuse]' o-plain)"
check "openai: a refusal fails the task (rejected)" \
    "$(wait_done "$t") $(sql "SELECT status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "failed rejected"
t="$(task 'Slowly [slow]' o-plain "output_schema => '$schema'")"
check "openai: a slow reply times out" \
    "$(wait_done "$t") $(sql "SELECT status_reason FROM agent_tasks.tasks WHERE id = '$t'")" "failed timeout"
check "set_agent_secret replaces the secret" "$(sql "SELECT agent_tasks.set_agent_secret('o-plain', 'sk-wrong')")" t
t="$(task 'Wrong key' o-plain)"
check "openai: a wrong key gives the endpoint's 401 message" \
    "$(wait_done "$t") $(sql "SELECT error ->> 'message' FROM agent_tasks.tasks WHERE id = '$t'")" \
    "failed the agent answered HTTP 401: Incorrect API key provided"

# --- stopping a request in flight -------------------------------------------------------------
agent h-long http "$BASE/agent/slow?ms=8000" "timeout => '30 seconds'" >/dev/null
srv POST /reset >/dev/null
t="$(task 'Stop me' h-long)"
wait_for "SELECT status = 'in_progress' FROM agent_tasks.tasks WHERE id = '$t'" 50 >/dev/null
for _ in $(seq 50); do [[ "$(srv GET /stats d.in_flight)" -ge 1 ]] && break; sleep 0.1; done
sql "SELECT agent_tasks.stop_task('$t')" >/dev/null
for _ in $(seq 50); do [[ "$(srv GET /stats d.aborted)" -ge 1 ]] && break; sleep 0.1; done
check "stop: the request in flight is aborted" "$(srv GET /stats d.aborted)" 1
check "stop: the task stays on hold" "$(sleep 0.3; sql "SELECT status FROM agent_tasks.tasks WHERE id = '$t'")" on_hold

# --- many in flight ----------------------------------------------------------------------------
N=150
agent h-many http "$BASE/agent/slow?ms=1500" "concurrency => 1000, timeout => '30 seconds'" >/dev/null
srv POST /reset >/dev/null
start=$(date +%s%N)
sql "SELECT count(agent_tasks.create_task('many ' || i, agent => 'h-many', auto_process => true)) FROM generate_series(1, $N) i" >/dev/null
wait_for "SELECT count(*) = $N FROM agent_tasks.tasks WHERE title LIKE 'many %' AND status = 'completed'" 300 >/dev/null
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "$N slow requests (1.5 s each) all completed" \
    "$(sql "SELECT count(*) FROM agent_tasks.tasks WHERE title LIKE 'many %' AND status = 'completed'")" "$N"
max="$(srv GET /stats d.max_in_flight)"
if [[ "$max" -ge 100 ]]; then ok "100+ requests in flight at once (max $max, $N in $elapsed ms)"
else nok "100+ requests in flight at once" "max in flight $max, elapsed $elapsed ms"; fi

check "the dispatcher is still the same process, without errors logged" \
    "$(sql "SELECT count(*) FROM agent_tasks.worker_status() WHERE worker LIKE 'dispatcher%' AND state IN ('idle', 'running')")" 1

finish
