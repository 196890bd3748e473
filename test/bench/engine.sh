#!/usr/bin/env bash
# Engine benchmarks on a throwaway cluster, each figure next to the
# machine's own limit measured in the same run:
#   lifecycle throughput  tasks created -> executed by a no-op sql agent ->
#                         completed (with the full activity trail), tasks/s,
#                         against pgbench -N tps at the same client count
#   wake-up latency       commit of a queued run -> claimed by an idle executor
#   claim latency         claim_runs() with 1,000 and 1,000,000 queued runs
#   executor memory       anonymous RSS of the executors before and after the
#                         lifecycle run (it must not grow with the runs done)
# Knobs: BENCH_CLIENTS (8), BENCH_TASKS (20000), BENCH_SECONDS (15),
#        BENCH_DEEP (1000000), BENCH_EXECUTORS (2).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"

CLIENTS="${BENCH_CLIENTS:-8}"
TASKS="${BENCH_TASKS:-20000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-15}"
DEEP="${BENCH_DEEP:-1000000}"
EXECUTORS="${BENCH_EXECUTORS:-2}"

"$REPO_ROOT/test/setup.sh"
AGENT_TASKS_EXTRA_CONF="agent_tasks.executor_workers = $EXECUTORS
track_commit_timestamp = on
max_wal_size = '4GB'
shared_buffers = '1GB'" cluster_start
WORK="$(make_pg_tmpdir)"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
percentiles() { # file of numbers -> "p50 p99"
    sort -n "$1" | awk '{v[NR]=$1} END {printf "%.3f %.3f\n", v[int(NR*0.5)+(NR*0.5>int(NR*0.5))], v[int(NR*0.99)+(NR*0.99>int(NR*0.99))]}'
}

q -c 'CREATE EXTENSION agent_tasks' >/dev/null
q <<'SQL' >/dev/null
CREATE FUNCTION public.noop(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SET agent_tasks.account = 'bench';
SELECT agent_tasks.create_agent('noop', 'sql', 'public.noop', concurrency => 1000);
SELECT agent_tasks.create_agent('remote', 'external', concurrency => 10000);
SQL

say "pgbench -N with $CLIENTS clients for ${SECONDS_PER_RUN}s (the machine's limit)"
pgbench -q -i -s 10 >/dev/null 2>&1
PGBENCH_TPS=$(pgbench -n -N -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" 2>/dev/null |
    awk '/^tps = / {print $3}')

executor_rss() { # total RssAnon of the executors, kB
    local pid total=0
    for pid in $(q -c "SELECT pid FROM agent_tasks.worker_status() WHERE worker LIKE 'executor-%'"); do
        total=$((total + $(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")))
    done
    echo "$total"
}
q -c "SET agent_tasks.account = 'bench'" \
  -c "SELECT count(agent_tasks.create_task('warm-up', agent => 'noop', auto_process => true)) FROM generate_series(1, 500)" >/dev/null
until [[ "$(q -c "SELECT count(*) FROM agent_tasks_internal.tasks WHERE status = 'completed'")" -ge 500 ]]; do sleep 0.05; done
RSS_BEFORE=$(executor_rss)
WARM=500

lifecycle() { # prints tasks/s for TASKS tasks created -> run -> completed
    local start end before
    before=$(q -c "SELECT count(*) FROM agent_tasks_internal.tasks WHERE status = 'completed'")
    start=$(date +%s.%N)
    pgbench -n -c "$CLIENTS" -j 2 -t $((TASKS / CLIENTS)) -f "$WORK/create.sql" >/dev/null
    until [[ "$(q -c "SELECT count(*) FROM agent_tasks_internal.tasks WHERE status = 'completed'")" -ge $((before + DONE)) ]]; do
        sleep 0.05
    done
    end=$(date +%s.%N)
    awk -v n="$DONE" -v s="$start" -v e="$end" 'BEGIN {print n / (e - s)}'
}
cat > "$WORK/create.sql" <<'SQL'
SET agent_tasks.account = 'bench';
SELECT agent_tasks.create_task('bench task', agent => 'noop', auto_process => true);
SQL
chmod 644 "$WORK/create.sql"
DONE=$((TASKS / CLIENTS * CLIENTS))

say "lifecycle: $DONE tasks created by $CLIENTS clients and run by $EXECUTORS executors"
LIFECYCLE_TPS=$(lifecycle)
ACTIVITIES=$(q -c "SELECT round(count(*)::numeric / ($DONE + $WARM), 1) FROM agent_tasks_internal.activities")
RSS_AFTER=$(executor_rss)

say "lifecycle again with agent_tasks.notify = off"
q -c "ALTER SYSTEM SET agent_tasks.notify = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
LIFECYCLE_QUIET_TPS=$(lifecycle)
q -c "ALTER SYSTEM RESET agent_tasks.notify" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1

say "wake-up latency: 200 tasks, one at a time, executors idle"
q <<'SQL' >/dev/null
SET agent_tasks.account = 'bench';
CREATE TABLE public.wake_tasks (id uuid);
SQL
for _ in $(seq 1 200); do
    q -c "SET agent_tasks.account = 'bench'" \
      -c "INSERT INTO public.wake_tasks SELECT id FROM agent_tasks.create_task('wake', agent => 'noop', auto_process => true)" >/dev/null
    sleep 0.02
done
sleep 0.5
q -c "
SELECT round(extract(epoch FROM s.created_at - pg_xact_commit_timestamp(c.xmin)) * 1000, 3)
  FROM public.wake_tasks w
  JOIN agent_tasks_internal.activities c ON c.task_id = w.id AND c.event = 'created'
  JOIN agent_tasks_internal.activities s ON s.task_id = w.id AND s.to_status = 'in_progress'" > "$WORK/wake.txt"
read -r WAKE_P50 WAKE_P99 < <(percentiles "$WORK/wake.txt")

claim_latency() { # queued-runs label
    cat > "$WORK/claim.sql" <<'SQL'
SET agent_tasks.account = 'bench';
SELECT count(*) FROM agent_tasks.claim_runs('bench-worker', ARRAY['remote']);
SQL
    chmod 644 "$WORK/claim.sql"
    rm -f "$WORK"/pgbench_log.*
    (cd "$WORK" && pgbench -n -c 1 -t 500 -l -f claim.sql >/dev/null)
    awk '{print $3 / 1000}' "$WORK"/pgbench_log.* > "$WORK/claim_$1.txt"
    percentiles "$WORK/claim_$1.txt"
}

bulk_queue() { # how many queued runs of the external agent to add
    q <<SQL >/dev/null
SET agent_tasks.account = 'bench';
ALTER TABLE agent_tasks_internal.tasks DISABLE TRIGGER USER;
ALTER TABLE agent_tasks_internal.runs DISABLE TRIGGER USER;
CREATE TEMP TABLE new_ids AS
  SELECT agent_tasks.uuid_v7() AS task_id, agent_tasks.uuid_v7() AS run_id FROM generate_series(1, $1);
INSERT INTO agent_tasks_internal.tasks (account, id, title, agent_id, created_by, status, latest_run_id)
  SELECT 'bench', task_id, 'deep queue', (SELECT id FROM agent_tasks_internal.agents WHERE name = 'remote'),
         'bench', 'queued', run_id FROM new_ids;
INSERT INTO agent_tasks_internal.runs (account, id, task_id, agent_id, kind, due_at, queued_at)
  SELECT 'bench', run_id, task_id, (SELECT id FROM agent_tasks_internal.agents WHERE name = 'remote'),
         'external', now() - interval '1 minute', now() FROM new_ids;
ALTER TABLE agent_tasks_internal.tasks ENABLE TRIGGER USER;
ALTER TABLE agent_tasks_internal.runs ENABLE TRIGGER USER;
SQL
    q -c 'VACUUM ANALYZE agent_tasks_internal.tasks, agent_tasks_internal.runs' >/dev/null
}

say "claim latency with 1,000 queued runs"
bulk_queue 1000
read -r CLAIM1K_P50 CLAIM1K_P99 < <(claim_latency 1k)
say "claim latency with $DEEP queued runs (bulk-loading them first)"
bulk_queue "$DEEP"
read -r CLAIMDEEP_P50 CLAIMDEEP_P99 < <(claim_latency deep)

RATIO=$(awk -v a="$LIFECYCLE_TPS" -v b="$PGBENCH_TPS" 'BEGIN {print a / b}')
QUIET_RATIO=$(awk -v a="$LIFECYCLE_QUIET_TPS" -v b="$PGBENCH_TPS" 'BEGIN {print a / b}')
printf '\n%-58s %s\n' "benchmark" "result"
printf '%-58s %.0f tasks/s\n' "lifecycle throughput ($CLIENTS clients, $EXECUTORS executors)" "$LIFECYCLE_TPS"
printf '%-58s %.0f tps\n' "pgbench -N, same clients (machine limit)" "$PGBENCH_TPS"
printf '%-58s %.3f\n' "ratio lifecycle / pgbench -N" "$RATIO"
printf '%-58s %.0f tasks/s (ratio %.3f)\n' "lifecycle throughput with agent_tasks.notify = off" "$LIFECYCLE_QUIET_TPS" "$QUIET_RATIO"
printf '%-58s %s\n' "activities written per task" "$ACTIVITIES"
printf '%-58s p50 %s ms, p99 %s ms\n' "wake-up latency (commit -> in_progress)" "$WAKE_P50" "$WAKE_P99"
printf '%-58s %s kB -> %s kB\n' "executor memory (RssAnon, all executors) over the lifecycle run" "$RSS_BEFORE" "$RSS_AFTER"
printf '%-58s p50 %s ms, p99 %s ms\n' "claim latency, 1,000 queued" "$CLAIM1K_P50" "$CLAIM1K_P99"
printf '%-58s p50 %s ms, p99 %s ms\n' "claim latency, $DEEP queued" "$CLAIMDEEP_P50" "$CLAIMDEEP_P99"
