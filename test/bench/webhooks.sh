#!/usr/bin/env bash
# Webhook delivery benchmark on a throwaway cluster, next to the receiver's
# own capacity measured in the same run:
#   receiver capacity   wrk against the loopback receiver (test/webhooks/
#                       bench_receiver.js: node, keep-alive, verifies every
#                       signature with standardwebhooks), signed POSTs of the
#                       same size, as many connections as the dispatcher uses
#   delivery rate       a backlog of BENCH_DELIVERIES task.created deliveries
#                       comes due at once; the dispatcher claims, signs, POSTs
#                       and records each outcome: deliveries/s at the receiver
#                       (first to last arrival), and the ratio to capacity
#   end to end          BENCH_TASKS tasks created by BENCH_CLIENTS sessions
#                       while the dispatcher delivers: tasks/s from the first
#                       commit to the last arrival
#   latency             BENCH_LATENCY tasks created one per transaction, paced:
#                       commit -> arrival at the receiver, p50 / p99
# Knobs: BENCH_DELIVERIES (50000), BENCH_TASKS (20000), BENCH_CLIENTS (4),
#        BENCH_LATENCY (2000), BENCH_IN_FLIGHT (64, agent_tasks.http_max_in_flight),
#        BENCH_WRK_SECONDS (5).
# wrk (Debian package) is installed by test/setup.sh, which this script runs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"

DELIVERIES="${BENCH_DELIVERIES:-50000}"
TASKS="${BENCH_TASKS:-20000}"
CLIENTS="${BENCH_CLIENTS:-4}"
LATENCY_N="${BENCH_LATENCY:-2000}"
IN_FLIGHT="${BENCH_IN_FLIGHT:-64}"
WRK_SECONDS="${BENCH_WRK_SECONDS:-5}"
HOOKS="$REPO_ROOT/test/webhooks"
SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

command -v node >/dev/null 2>&1 || die "node is needed for the receiver"
if [[ ! -d "$HOOKS/node_modules/standardwebhooks" ]]; then
    (cd "$HOOKS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in test/webhooks"
fi

"$REPO_ROOT/test/setup.sh"
AGENT_TASKS_EXTRA_CONF="agent_tasks.allow_insecure_loopback = on
agent_tasks.http_max_in_flight = $IN_FLIGHT
max_wal_size = '4GB'
shared_buffers = '1GB'
synchronous_commit = on" cluster_start
WORK="$(make_pg_tmpdir)"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
percentiles() { # file of numbers -> "p50 p99"
    sort -n "$1" | awk '{v[NR]=$1} END {printf "%.2f %.2f\n", v[int(NR*0.5)+(NR*0.5>int(NR*0.5))], v[int(NR*0.99)+(NR*0.99>int(NR*0.99))]}'
}

q -c 'CREATE EXTENSION agent_tasks' >/dev/null
[[ "$(q -c "SELECT to_regprocedure('agent_tasks_internal.claim_http_runs(text,integer)') IS NOT NULL")" == t ]] \
    || die "this build has no HTTP dispatcher: nothing delivers webhooks"

# --- the receiver ------------------------------------------------------------
SECRET="$SECRET" node "$HOOKS/bench_receiver.js" >"$WORK/receiver.out" 2>"$WORK/receiver.err" &
RECEIVER_PID=$!
on_exit "kill $RECEIVER_PID 2>/dev/null"
for _ in $(seq 100); do [[ -s "$WORK/receiver.out" ]] && break; sleep 0.05; done
PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).port)' "$WORK/receiver.out")
CPORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).control_port)' "$WORK/receiver.out")
stats() { curl -s "http://127.0.0.1:$CPORT/stats"; }
stat_field() { stats | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
reset_receiver() { curl -s "http://127.0.0.1:$CPORT/reset" >/dev/null; }

q <<SQL >/dev/null
SET agent_tasks.account = 'bench';
SELECT agent_tasks.create_webhook('http://127.0.0.1:$PORT/hook', '{task.created}', '$SECRET');
SQL
ENDPOINT=$(q -c "SELECT id FROM agent_tasks_internal.webhook_endpoints WHERE account = 'bench'")

# A real payload, to size the requests of wrk and of the backlog alike.
PGOPTIONS="-c agent_tasks.account=bench" q -c "SELECT agent_tasks.create_task('sample task for the payload size')" >/dev/null
for _ in $(seq 100); do [[ "$(stat_field count)" -ge 1 ]] && break; sleep 0.1; done
BODY=$(q -c "SELECT body FROM agent_tasks_internal.webhook_deliveries WHERE account = 'bench' LIMIT 1")

# --- 1. receiver capacity with wrk --------------------------------------------
TS=$(date +%s)
SIG=$(q -c "SELECT agent_tasks_internal.sign_webhook('$SECRET', 'msg_wrk', $TS, \$b\$$BODY\$b\$)")
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["content-type"] = "application/json"
wrk.headers["webhook-id"] = "msg_wrk"
wrk.headers["webhook-timestamp"] = "$TS"
wrk.headers["webhook-signature"] = "$SIG"
LUA
reset_receiver
wrk -t2 -c"$IN_FLIGHT" -d"${WRK_SECONDS}s" -s "$WORK/post.lua" "http://127.0.0.1:$PORT/hook" >"$WORK/wrk.out"
CAPACITY=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
[[ "$(stat_field bad)" == 0 ]] || die "wrk's requests failed verification"

# --- 2. backlog drain rate ---------------------------------------------------
reset_receiver
q <<SQL >/dev/null
INSERT INTO agent_tasks_internal.webhook_deliveries (account, kind, endpoint_id, task_id, event, url, body, next_attempt_at)
SELECT 'bench', 'webhook', '$ENDPOINT', NULL, 'task.created', 'http://127.0.0.1:$PORT/hook',
	   replace(\$b\$$BODY\$b\$, 'sample task', 'backlog ' || i), now() + interval '3 seconds'
  FROM generate_series(1, $DELIVERIES) i;
SQL
q -c "VACUUM ANALYZE agent_tasks_internal.webhook_deliveries" >/dev/null
for _ in $(seq 1200); do
    [[ "$(q -c "SELECT count(*) FROM agent_tasks_internal.webhook_deliveries WHERE status = 'pending'")" == 0 ]] && break
    sleep 0.25
done
read -r GOT FIRST LAST < <(stats | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const j=JSON.parse(s);console.log(j.count, j.first_ms, j.last_ms)})')
DRAIN_RATE=$(awk -v n="$GOT" -v a="$FIRST" -v b="$LAST" 'BEGIN {printf "%.0f", n / ((b - a) / 1000)}')
DRAIN_RATIO=$(awk -v r="$DRAIN_RATE" -v c="$CAPACITY" 'BEGIN {printf "%.2f", r / c}')
NOT_DELIVERED=$(q -c "SELECT count(*) FROM agent_tasks_internal.webhook_deliveries WHERE status <> 'delivered'")

# --- 3. end to end: tasks created while the dispatcher delivers ----------------
reset_receiver
T0=$(date +%s.%N)
per_client=$((TASKS / CLIENTS))
for c in $(seq "$CLIENTS"); do
    PGOPTIONS="-c agent_tasks.account=bench" q -c "
        DO \$\$ BEGIN FOR i IN 1..$((per_client / 100)) LOOP
            PERFORM agent_tasks.create_task('e2e $c ' || i || ' ' || j) FROM generate_series(1, 100) j;
            COMMIT;
        END LOOP; END \$\$" >/dev/null &
done
wait $(jobs -p | grep -v "^$RECEIVER_PID\$") 2>/dev/null || true
E2E_N=$((per_client / 100 * 100 * CLIENTS))
for _ in $(seq 1200); do [[ "$(stat_field count)" -ge "$E2E_N" ]] && break; sleep 0.1; done
LAST_E2E=$(stat_field last_ms)
E2E_RATE=$(awk -v n="$(stat_field count)" -v a="$T0" -v b="$LAST_E2E" 'BEGIN {printf "%.0f", n / (b / 1000 - a)}')

# --- 4. commit -> arrival latency ---------------------------------------------
reset_receiver
q -c "CREATE TABLE public.bench_commits (title text PRIMARY KEY, committed_at timestamptz)" >/dev/null
PGOPTIONS="-c agent_tasks.account=bench" q <<SQL >/dev/null
CREATE PROCEDURE pg_temp.produce(n integer) LANGUAGE plpgsql AS \$\$
DECLARE
	t timestamptz[] := '{}';
BEGIN
	FOR i IN 1..n LOOP
		PERFORM agent_tasks.create_task('lat-' || i);
		COMMIT;
		t := t || clock_timestamp();
		PERFORM pg_sleep(0.002);
	END LOOP;
	INSERT INTO public.bench_commits SELECT 'lat-' || i, t[i] FROM generate_series(1, n) i;
	COMMIT;
END \$\$;
CALL pg_temp.produce($LATENCY_N);
SQL
for _ in $(seq 600); do [[ "$(stat_field count)" -ge "$LATENCY_N" ]] && break; sleep 0.1; done
curl -s "http://127.0.0.1:$CPORT/arrivals" \
    | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{for(const [t,ms] of JSON.parse(s))console.log(t+"\t"+(ms/1000).toFixed(6))})' \
    >"$WORK/arrivals.tsv"
q -c "CREATE TEMP TABLE arr (title text, at double precision)" \
  -c "\\copy arr FROM '$WORK/arrivals.tsv'" \
  -c "SELECT round(((a.at - extract(epoch FROM c.committed_at)) * 1000)::numeric, 3)
        FROM arr a JOIN public.bench_commits c USING (title)" >"$WORK/latency.txt"
read -r LAT_P50 LAT_P99 < <(percentiles "$WORK/latency.txt")
LAT_N=$(wc -l <"$WORK/latency.txt")

printf '\n%-62s %s\n' "benchmark (webhooks)" "result"
printf '%-62s %.0f req/s\n' "receiver capacity (wrk -c$IN_FLIGHT, signed POSTs, verified)" "$CAPACITY"
printf '%-62s %s deliveries/s (%s delivered, %s not)\n' "delivery rate, backlog of $DELIVERIES (in flight $IN_FLIGHT)" "$DRAIN_RATE" "$GOT" "$NOT_DELIVERED"
printf '%-62s %s\n' "ratio delivery rate / receiver capacity" "$DRAIN_RATIO"
printf '%-62s %s tasks/s\n' "end to end: $E2E_N tasks by $CLIENTS sessions -> delivered" "$E2E_RATE"
printf '%-62s p50 %s ms, p99 %s ms (%s tasks)\n' "latency commit -> arrival at the receiver" "$LAT_P50" "$LAT_P99" "$LAT_N"
