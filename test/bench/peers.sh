#!/usr/bin/env bash
# Peers benchmark (issue 9):  ./test/bench/run.sh peers   (or ./test/bench/peers.sh)
# As root on a machine where test/setup.sh has run; 10-30 minutes at the defaults.
#
# On one throwaway cluster, each system in its own database as its own
# non-superuser role, interleaved and repeated (BENCH_ROUNDS, at durable
# settings, fsync and synchronous_commit on, then fast ones, both off): the
# agent_tasks lifecycle (8 pgbench clients as an agent_tasks_writer role, RLS
# on, create_task(auto_process => true) for a no-op sql agent, run by the
# in-server executors), graphile-worker (concurrency 10, runner started before
# 8 pgbench clients add jobs), pg-boss (batch fetch, 8 node clients sending)
# and pgbench -N, each timed from the first submission until every item is
# done.  Per item: server CPU (utime + stime of every process of the cluster,
# exited ones through the postmaster's cutime), WAL bytes and rows written
# (n_tup_ins + upd + del); min / median / max over rounds; agent_tasks'
# ratios to the others.  Then one agent_tasks round profiled with
# pg_stat_statements (track = all; none during the measured rounds), wake-up
# latency on an idle system, and claim_runs() latency behind work it cannot
# take: 1M queued runs of another agent, an agent at its concurrency limit
# with a 1M backlog, 2,000 children of a parent locked FOR UPDATE.  The last
# table holds the figures with issue 9's targets.  full_page_writes is off at
# both settings (as in test/cluster.sh), so WAL is the records written, not
# full-page images that depend on when the last checkpoint was; a CHECKPOINT
# and VACUUM ANALYZE run between rounds, outside the measured window.
#
# graphile-worker and pg-boss install their own schemas, as roles owning
# their databases: neither needs a superuser.  CREATE EXTENSION agent_tasks
# does, and the claim tests bulk-load their queues as superuser with
# session_replication_role = replica (no triggers, no foreign-key checks).
#
# Knobs: BENCH_TASKS (10000), BENCH_ROUNDS (3), BENCH_CLIENTS (8),
#   BENCH_EXECUTORS (2), BENCH_GRAPHILE_CONCURRENCY (10),
#   BENCH_PGBOSS_WORKERS (10), BENCH_PGBOSS_BATCH (200), BENCH_DEEP (1000000),
#   BENCH_CHILDREN (2000), BENCH_CLAIMS (1000), BENCH_CLAIM_SECONDS (60),
#   BENCH_WAKEUPS (200), BENCH_ROUND_TIMEOUT (900 s).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$BENCH_DIR/../cluster.sh"

TASKS="${BENCH_TASKS:-10000}"
ROUNDS="${BENCH_ROUNDS:-3}"
CLIENTS="${BENCH_CLIENTS:-8}"
EXECUTORS="${BENCH_EXECUTORS:-2}"
GW_CONCURRENCY="${BENCH_GRAPHILE_CONCURRENCY:-10}"
BOSS_WORKERS="${BENCH_PGBOSS_WORKERS:-10}"
BOSS_BATCH="${BENCH_PGBOSS_BATCH:-200}"
DEEP="${BENCH_DEEP:-1000000}"
CHILDREN="${BENCH_CHILDREN:-2000}"
CLAIMS="${BENCH_CLAIMS:-1000}"
CLAIM_SECONDS="${BENCH_CLAIM_SECONDS:-60}"
WAKEUPS="${BENCH_WAKEUPS:-200}"
ROUND_TIMEOUT="${BENCH_ROUND_TIMEOUT:-900}"
LIMITED_CONCURRENCY=4
ITEMS=$((TASKS / CLIENTS * CLIENTS))    # pgbench clients each do the same count
WARM_ITEMS=$(( (TASKS / 10 > 200 ? TASKS / 10 : 200) / CLIENTS * CLIENTS ))
SYSTEMS=(agent_tasks hooked graphile pgboss pgbench)
declare -A DB=([agent_tasks]=peers_agent_tasks [hooked]=peers_agent_tasks [graphile]=peers_graphile [pgboss]=peers_pgboss [pgbench]=peers_pgbench)
declare -A LABEL=([agent_tasks]="agent_tasks lifecycle" [hooked]="agent_tasks + no-op hook" [graphile]="graphile-worker 0.16.6" [pgboss]="pg-boss 10.4.2" [pgbench]="pgbench -N")
AT_DB=${DB[agent_tasks]}

# --- preflight: everything this script runs, before anything starts --------
is_root || die "run as root: the servers run as user postgres (PostgreSQL refuses root)"
missing=()
for c in node npm runuser ps getconf "$PG_BINDIR/psql" "$PG_BINDIR/pgbench" "$PG_BINDIR/initdb"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
((${#missing[@]} == 0)) || die "missing commands: ${missing[*]} (test/setup.sh installs them)"
(( $(node -p 'process.versions.node.split(".")[0]') >= 20 )) || die "node >= 20 needed (pg-boss 10), found $(node --version)"
SHAREDIR="$("$PG_CONFIG" --sharedir)"
[[ -f "$SHAREDIR/extension/agent_tasks.control" ]] || die "agent_tasks is not installed in $SHAREDIR (run test/setup.sh first)"
[[ -f "$SHAREDIR/extension/pg_stat_statements.control" ]] || die "pg_stat_statements is missing (package postgresql-15)"
export PATH="$PG_BINDIR:$PATH"
CLK_TCK=$(getconf CLK_TCK)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- helpers -----------------------------------------------------------------
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

# Processes this script started, stopped on any exit.
HELPERS=()
stop_helpers() {
    local pid
    for pid in "${HELPERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${HELPERS[@]}"; do wait "$pid" 2>/dev/null || true; done
    HELPERS=()
}
start_helper() { # out-file command... ; sets HELPER_PID
    "${@:2}" >"$1" 2>"$1.err" &
    HELPER_PID=$!
    HELPERS+=("$HELPER_PID")
}
wait_ready() { # out-file pid what
    local i
    for i in $(seq 1 600); do
        grep -qx ready "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { cat "$1.err" >&2; die "$3 exited before it was ready"; }
        sleep 0.1
    done
    die "$3 not ready after 60 s"
}
finish_helper() { # pid: wait for a helper that ends by itself
    local pid=$1 rc=0 p left=()
    wait "$pid" || rc=$?
    for p in "${HELPERS[@]}"; do [[ "$p" == "$pid" ]] || left+=("$p"); done
    HELPERS=("${left[@]}")
    return "$rc"
}
halt_helper() { # pid: stop a helper that runs until told
    kill -TERM "$1" 2>/dev/null || true
    finish_helper "$1" || true
}

# Server CPU of the cluster in clock ticks: every process's utime + stime,
# and the postmaster's cutime + cstime, which hold its exited children
# (backends of finished clients, autovacuum workers).
server_cpu_ticks() {
    local pm pid stat total=0
    local -a f
    pm=$(head -n 1 "$CLUSTER_DATA/postmaster.pid")
    for pid in "$pm" $(ps -o pid= --ppid "$pm"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a f <<<"${stat##*) }"     # f[0] is field 3 (state)
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}
wal_lsn() { q -c 'SELECT pg_current_wal_insert_lsn()'; }
rows_written() { # db
    q -d "$1" -c 'SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_all_tables'
}
# Backends publish their table counters at most once a second (idle ones
# after up to 10 s, exiting ones at once): read until they stop moving.
rows_written_settled() { # db
    local prev cur i
    prev=$(rows_written "$1")
    for i in $(seq 1 10); do
        sleep 2
        cur=$(rows_written "$1")
        [[ "$cur" == "$prev" ]] && break
        prev=$cur
    done
    echo "$prev"
}

url() { echo "postgresql://$1@127.0.0.1:$PGPORT/$2"; }

apply_settings() { # durable | fast
    local v=on
    [[ "$1" == fast ]] && v=off
    q -c "ALTER SYSTEM SET fsync = $v" -c "ALTER SYSTEM SET synchronous_commit = $v" \
      -c 'SELECT pg_reload_conf()' >/dev/null
    local i
    for i in $(seq 1 100); do
        [[ "$(q -c 'SHOW fsync' -c 'SHOW synchronous_commit' | tr '\n' ' ')" == "$v $v " ]] && return 0
        sleep 0.1
    done
    die "settings fsync/synchronous_commit = $v not applied after a reload"
}

# nearest-rank percentiles of a file of numbers: "p50 p99"
percentiles() {
    sort -g "$1" | awk '{v[NR] = $1}
        function rank(p,  r) { r = int(p * NR); if (r < p * NR) r++; return v[r < 1 ? 1 : r] }
        END { if (NR == 0) print "- -"; else printf "%.3f %.3f\n", rank(0.5), rank(0.99) }'
}

# --- the throwaway cluster, the npm packages -------------------------------
WORK="$(make_pg_tmpdir)"
on_exit "rm -rf '$WORK'"
say "npm ci (graphile-worker, pg-boss, pg from test/bench/package-lock.json) into $WORK/node"
mkdir -p "$WORK/node"
cp "$BENCH_DIR/package.json" "$BENCH_DIR/package-lock.json" "$BENCH_DIR"/peers/*.js "$WORK/node/"
(cd "$WORK/node" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) \
    || { cat "$WORK/npm.log" >&2; die "npm ci failed"; }
NODE_DIR="$WORK/node"

AGENT_TASKS_PRELOAD="agent_tasks,pg_cron,pg_stat_statements"
AGENT_TASKS_EXTRA_CONF="agent_tasks.database = '$AT_DB'
agent_tasks.executor_workers = $EXECUTORS
# a limit stays set, so the per-account counting is measured, but high enough for the run
agent_tasks.task_rate_limit = 1000000000
track_commit_timestamp = on
shared_buffers = '1GB'
max_wal_size = '16GB'
checkpoint_timeout = '1h'
pg_stat_statements.track = 'none'
pg_stat_statements.max = 10000" cluster_start
on_exit stop_helpers
PG_VERSION=$(q -c 'SHOW server_version')

say "databases, roles, schemas"
q <<SQL >/dev/null
CREATE EXTENSION pg_stat_statements;
CREATE DATABASE $AT_DB;
CREATE ROLE peers_graphile LOGIN;
CREATE DATABASE ${DB[graphile]} OWNER peers_graphile;
CREATE ROLE peers_pgboss LOGIN;
CREATE DATABASE ${DB[pgboss]} OWNER peers_pgboss;
CREATE ROLE peers_pgbench LOGIN;
CREATE DATABASE ${DB[pgbench]} OWNER peers_pgbench;
SQL
q -d "$AT_DB" <<'SQL' >/dev/null
CREATE EXTENSION agent_tasks;
CREATE ROLE peers_admin LOGIN IN ROLE agent_tasks_admin;
CREATE ROLE peers_app LOGIN IN ROLE agent_tasks_writer;
CREATE ROLE peers_worker LOGIN IN ROLE agent_tasks_worker;
CREATE SCHEMA peers AUTHORIZATION peers_admin;
-- the engine resolves and checks an sql agent's function (not its rights to run it)
GRANT USAGE ON SCHEMA peers TO agent_tasks_engine;
SQL
q -U peers_admin -d "$AT_DB" <<SQL >/dev/null
CREATE FUNCTION peers.noop(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS \$\$ SELECT '{}'::jsonb \$\$;
SET agent_tasks.account = 'bench';
SELECT agent_tasks.create_agent('noop', 'sql', 'peers.noop', concurrency => 1000);
-- The same lifecycle in an account with one task hook on every event.
CREATE FUNCTION peers.noop_hook(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql AS \$\$ SELECT \$\$;
SET agent_tasks.account = 'hooked';
SELECT agent_tasks.create_agent('noop', 'sql', 'peers.noop', concurrency => 1000);
SELECT agent_tasks.create_hook('noop', '{*}', 'peers.noop_hook');
SET agent_tasks.account = 'claims';
SELECT agent_tasks.create_agent('limited', 'external', concurrency => $LIMITED_CONCURRENCY);
SELECT agent_tasks.create_agent('target', 'external', concurrency => 10000);
SELECT agent_tasks.create_agent('child', 'external', concurrency => 10000);
SQL
pgbench -q -i -s 10 -U peers_pgbench "${DB[pgbench]}" >"$WORK/pgbench-init.log" 2>&1 \
    || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
cat >"$WORK/create.sql" <<'SQL'
SELECT id FROM agent_tasks.create_task('peers task', agent => 'noop', auto_process => true);
SQL
cat >"$WORK/add_job.sql" <<'SQL'
SELECT id FROM graphile_worker.add_job('noop');
SQL
chmod 644 "$WORK"/*.sql

# --- one system, one round -------------------------------------------------
# <system>_start items (runner, poller, clients up, before the clock), <system>_drive
# (submits the items; returns when all are submitted), <system>_end (sets END
# to when the last item was done), <system>_stop, <system>_check.
POLL_PID=""
start_poller() { # db query...: run when every item is submitted (poll_end)
    start_helper "$WORK/poll.out" node "$NODE_DIR/poll.js" "$(url postgres "$1")" 20 "$ROUND_TIMEOUT" "${@:2}"
    POLL_PID=$HELPER_PID
    wait_ready "$WORK/poll.out" "$POLL_PID" "poller"
}
poll_end() {
    kill -USR2 "$POLL_PID"
    finish_helper "$POLL_PID" || { cat "$WORK/poll.out.err" >&2; die "not done after ${ROUND_TIMEOUT}s (poller: $(tail -n 1 "$WORK/poll.out"))"; }
    END=$(tail -n 1 "$WORK/poll.out")
}
# pgbench clients (the built-in -N script when no script is given)
pgbench_clients() { # role db script items
    local script=(-f "$3")
    [[ -z "$3" ]] && script=(-N)
    PGOPTIONS="${PGOPTIONS_FOR_DRIVE:-}" run_fg pgbench -n "${script[@]}" -c "$CLIENTS" -j 2 -t $(($4 / CLIENTS)) -U "$1" "$2" \
        >"$WORK/pgbench.out" 2>&1 || { tail -n 20 "$WORK/pgbench.out" >&2; die "pgbench ($1 on $2) failed"; }
}

# The agent_tasks lifecycle in an account: "bench", or "hooked" (one no-op hook).
declare -A AT_DONE=([bench]=0 [hooked]=0)
lifecycle_start() { # account
    start_poller "$AT_DB" "SELECT NOT EXISTS (SELECT 1 FROM agent_tasks_internal.tasks WHERE account = '$1' AND status IN ('pending', 'queued', 'in_progress')) AS done"
}
lifecycle_drive() { PGOPTIONS_FOR_DRIVE="-c agent_tasks.account=$1" pgbench_clients peers_app "$AT_DB" "$WORK/create.sql" "$2"; }
lifecycle_check() { # account items
    AT_DONE[$1]=$((AT_DONE[$1] + $2))
    local got
    got=$(q -d "$AT_DB" -c "SELECT count(*) FILTER (WHERE status = 'completed') || ' of ' || count(*) FROM agent_tasks_internal.tasks WHERE account = '$1'")
    [[ "$got" == "${AT_DONE[$1]} of ${AT_DONE[$1]}" ]] || die "agent_tasks ($1): $got tasks completed, expected ${AT_DONE[$1]}"
}
agent_tasks_start() { lifecycle_start bench; }
agent_tasks_drive() { lifecycle_drive bench "$1"; }
agent_tasks_end() { poll_end; }
agent_tasks_stop() { :; }
agent_tasks_check() { lifecycle_check bench "$1"; }
hooked_start() { lifecycle_start hooked; }
hooked_drive() { lifecycle_drive hooked "$1"; }
hooked_end() { poll_end; }
hooked_stop() { :; }
hooked_check() { lifecycle_check hooked "$1"; }

GRAPHILE_PID=""
graphile_start() {
    start_helper "$WORK/graphile.out" node "$NODE_DIR/graphile.js" "$(url peers_graphile "${DB[graphile]}")" "$GW_CONCURRENCY"
    GRAPHILE_PID=$HELPER_PID
    wait_ready "$WORK/graphile.out" "$GRAPHILE_PID" "graphile-worker runner"
    start_poller "${DB[graphile]}" "SELECT NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS done"
}
graphile_drive() { pgbench_clients peers_graphile "${DB[graphile]}" "$WORK/add_job.sql" "$1"; }
graphile_end() { poll_end; }
graphile_stop() { halt_helper "$GRAPHILE_PID"; }
graphile_check() { :; }    # completed jobs are deleted: an empty table is the check

BOSS_PID=""
BOSS_DONE=0
BOSS_SENDER_PID=""
pgboss_start() { # items
    start_helper "$WORK/pgboss.out" node "$NODE_DIR/pgboss.js" work "$(url peers_pgboss "${DB[pgboss]}")" noop "$BOSS_WORKERS" "$BOSS_BATCH"
    BOSS_PID=$HELPER_PID
    wait_ready "$WORK/pgboss.out" "$BOSS_PID" "pg-boss workers"
    # created/retry first (a partial index), then active (a scan, when few are left)
    start_poller "${DB[pgboss]}" \
        "SELECT NOT EXISTS (SELECT 1 FROM pgboss.job WHERE name = 'noop' AND state < 'active') AS done" \
        "SELECT NOT EXISTS (SELECT 1 FROM pgboss.job WHERE name = 'noop' AND state = 'active') AS done"
    # connected before the clock starts, like pgbench's clients (node takes a while to start)
    start_helper "$WORK/send.out" node "$NODE_DIR/pgboss.js" send "$(url peers_pgboss "${DB[pgboss]}")" noop "$1" "$CLIENTS"
    BOSS_SENDER_PID=$HELPER_PID
    wait_ready "$WORK/send.out" "$BOSS_SENDER_PID" "pg-boss senders"
}
pgboss_drive() {
    kill -USR2 "$BOSS_SENDER_PID"
    finish_helper "$BOSS_SENDER_PID" || { cat "$WORK/send.out.err" >&2; die "pg-boss senders failed"; }
}
pgboss_end() { poll_end; }
pgboss_stop() { halt_helper "$BOSS_PID"; }
pgboss_check() {
    BOSS_DONE=$((BOSS_DONE + $1))
    local got
    got=$(q -d "${DB[pgboss]}" -c "SELECT count(*) FILTER (WHERE state = 'completed') || ' of ' || count(*) FROM pgboss.job WHERE name = 'noop'")
    [[ "$got" == "$BOSS_DONE of $BOSS_DONE" ]] || die "pg-boss: $got jobs completed, expected $BOSS_DONE"
}

pgbench_start() { :; }
pgbench_drive() { pgbench_clients peers_pgbench "${DB[pgbench]}" "" "$1"; }
pgbench_end() { END=$(now); }
pgbench_stop() { :; }
pgbench_check() { :; }

RESULTS="$WORK/results.tsv"
round() { # system items setting round-label
    local sys=$1 items=$2 db=${DB[$1]} rows0 wal0 cpu0 cpu1 t0 wal rows secs
    q -c CHECKPOINT >/dev/null
    "${sys}_start" "$items"
    rows0=$(rows_written "$db")
    wal0=$(wal_lsn)
    cpu0=$(server_cpu_ticks)
    t0=$(now)
    "${sys}_drive" "$items"
    "${sys}_end"
    cpu1=$(server_cpu_ticks)
    wal=$(q -c "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal0')")
    "${sys}_stop"
    rows=$(( $(rows_written_settled "$db") - rows0 ))
    "${sys}_check" "$items"
    q -d "$db" -c 'VACUUM ANALYZE' >/dev/null
    secs=$(awk -v a="$t0" -v b="$END" 'BEGIN {printf "%.3f", b - a}')
    printf '%s\t%s\t%s\t%d\t%s\t%d\t%.0f\t%d\n' "$3" "$4" "$sys" "$items" "$secs" $((cpu1 - cpu0)) "$wal" "$rows" >>"$RESULTS"
    awk -v s="$secs" -v n="$items" -v c=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v w="$wal" -v r="$rows" -v l="$3 $4 ${LABEL[$sys]}" \
        'BEGIN {printf "==>   %-40s %7.0f items/s  %6.3f ms CPU  %6.0f B WAL  %5.2f rows per item\n", l, n / s, c * 1000 / hz / n, w / n, r / n}' >&2
}

# --- throughput rounds -------------------------------------------------------
say "warm-up: $WARM_ITEMS items per system (not measured; installs graphile-worker's and pg-boss's schemas)"
apply_settings fast
for sys in "${SYSTEMS[@]}"; do round "$sys" "$WARM_ITEMS" fast warm-up; done
# What the idle cluster burns (launcher, executors, pg_cron polling) is in
# every round's CPU figure; printed so that it can be told apart.
q -c CHECKPOINT >/dev/null
cpu0=$(server_cpu_ticks)
sleep 10
IDLE_CPU=$(awk -v c=$(($(server_cpu_ticks) - cpu0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", c * 1000 / hz / 10}')
for ((r = 1; r <= ROUNDS; r++)); do
    for setting in durable fast; do
        apply_settings "$setting"
        say "round $r of $ROUNDS, $setting: $ITEMS items per system"
        for ((i = 0; i < ${#SYSTEMS[@]}; i++)); do    # a different system goes first each round
            round "${SYSTEMS[(i + r - 1) % ${#SYSTEMS[@]}]}" "$ITEMS" "$setting" "$r"
        done
    done
done

say "profile: one more agent_tasks round (fast) with pg_stat_statements.track = all"
q -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c 'SELECT pg_reload_conf()' -c 'SELECT pg_stat_statements_reset()' >/dev/null
round agent_tasks "$ITEMS" fast profile
q -c "ALTER SYSTEM SET pg_stat_statements.track = 'none'" -c 'SELECT pg_reload_conf()' >/dev/null
PROFILE=$(psql -X -q -v ON_ERROR_STOP=1 -P footer=off <<SQL
SELECT calls, round(total_exec_time::numeric, 0) AS total_ms,
       round((total_exec_time / $ITEMS)::numeric, 3) AS ms_per_task,
       round(mean_exec_time::numeric, 3) AS mean_ms, toplevel AS top,
       left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$AT_DB')
 ORDER BY total_exec_time DESC
 LIMIT 10;
SQL
)

# --- wake-up latency -------------------------------------------------------
# Commit of a queued run (the creating transaction's commit timestamp) to the
# executor's claim: inside the claim (the in_progress activity's clock time,
# as engine.sh measures) and visible to others (the claim's commit timestamp).
wakeup() { # setting
    local i
    apply_settings "$1"
    say "wake-up latency ($1): $WAKEUPS tasks, one at a time, executors idle"
    for i in $(seq 1 "$WAKEUPS"); do
        PGOPTIONS="-c agent_tasks.account=bench" q -U peers_app -d "$AT_DB" \
            -c "SELECT id FROM agent_tasks.create_task('wake-up $1', agent => 'noop', auto_process => true)" >/dev/null
        sleep 0.05
    done
    for i in $(seq 1 100); do
        [[ "$(q -d "$AT_DB" -c "SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = 'bench' AND title = 'wake-up $1' AND status = 'completed'")" == "$WAKEUPS" ]] && break
        sleep 0.1
    done
    q -d "$AT_DB" -F ' ' -c "
        SELECT round(extract(epoch FROM s.created_at - pg_xact_commit_timestamp(c.xmin)) * 1000, 3),
               round(extract(epoch FROM pg_xact_commit_timestamp(s.xmin) - pg_xact_commit_timestamp(c.xmin)) * 1000, 3)
          FROM agent_tasks_internal.tasks t
          JOIN agent_tasks_internal.activities c ON c.account = t.account AND c.task_id = t.id AND c.event = 'created'
          JOIN agent_tasks_internal.activities s ON s.account = t.account AND s.task_id = t.id AND s.to_status = 'in_progress'
         WHERE t.account = 'bench' AND t.title = 'wake-up $1'" >"$WORK/wake-$1.txt"
    [[ "$(wc -l <"$WORK/wake-$1.txt")" == "$WAKEUPS" ]] || die "wake-up ($1): $(wc -l <"$WORK/wake-$1.txt") of $WAKEUPS tasks measured"
    cut -d' ' -f1 "$WORK/wake-$1.txt" >"$WORK/wake-$1-claimed.txt"
    cut -d' ' -f2 "$WORK/wake-$1.txt" >"$WORK/wake-$1-visible.txt"
}
wakeup durable
wakeup fast
read -r WAKE_DURABLE_CLAIMED_P50 WAKE_DURABLE_CLAIMED_P99 < <(percentiles "$WORK/wake-durable-claimed.txt")
read -r WAKE_DURABLE_P50 WAKE_DURABLE_P99 < <(percentiles "$WORK/wake-durable-visible.txt")
read -r WAKE_FAST_CLAIMED_P50 WAKE_FAST_CLAIMED_P99 < <(percentiles "$WORK/wake-fast-claimed.txt")
read -r WAKE_FAST_P50 WAKE_FAST_P99 < <(percentiles "$WORK/wake-fast-visible.txt")

# --- claim latency -----------------------------------------------------------
# Queued runs of account "claims", loaded as superuser in one statement per
# table; due times put the work a claim cannot take ahead of what it can, in
# claim order.  External agents only: the executors never touch them.
bulk_runs() { # count agent status due-hours-ago [parent-id]
    q -d "$AT_DB" <<SQL >/dev/null
SET session_replication_role = replica;
CREATE TEMP TABLE ids AS
	SELECT i, agent_tasks.uuid_v7() AS task_id, agent_tasks.uuid_v7() AS run_id FROM generate_series(1, $1) i;
INSERT INTO agent_tasks_internal.tasks (account, id, parent_id, title, agent_id, created_by, status, latest_run_id)
	SELECT 'claims', task_id, ${5:-NULL}, 'claim latency', (SELECT id FROM agent_tasks_internal.agents WHERE account = 'claims' AND name = '$2'),
		   'peers', '$3', run_id
	  FROM ids;
INSERT INTO agent_tasks_internal.runs (account, id, task_id, agent_id, kind, status, due_at, queued_at,
		started_at, heartbeat_at, worker, lease_expires_at)
	SELECT 'claims', run_id, task_id, (SELECT id FROM agent_tasks_internal.agents WHERE account = 'claims' AND name = '$2'),
		   'external', '$3', now() - interval '$4 hours' + i * interval '1 microsecond', now(),
		   s.at, s.at, CASE WHEN '$3' = 'in_progress' THEN 'peers-holder' END, s.at + interval '1 day'
	  FROM ids, LATERAL (SELECT CASE WHEN '$3' = 'in_progress' THEN now() END AS at) s;
SQL
    q -d "$AT_DB" -c 'VACUUM ANALYZE agent_tasks_internal.tasks, agent_tasks_internal.runs' >/dev/null
}

# CLAIMS claims, one per transaction, each timed inside the server; stops
# after CLAIM_SECONDS, and a claim still running 30 s later is cancelled and
# counted as at least as long as it had run.  Sets CLAIM_RESULT[label] to
# "p50 p99 claims-done claims-that-got-a-run cancelled".
claim_latency() { # agents-array-literal-or-NULL label
    say "claim latency ($2): $CLAIMS claims, one run each"
    PGOPTIONS="-c agent_tasks.account=claims -c statement_timeout=$((CLAIM_SECONDS + 30))s" \
        psql -X -q -t -A -F ' ' -U peers_worker -d "$AT_DB" >"$WORK/claims-$2.txt" 2>"$WORK/claims-$2.err" <<SQL || true
CREATE TEMP TABLE claim_times (ended timestamptz, ms float8, claimed boolean);
INSERT INTO claim_times VALUES (clock_timestamp(), NULL, NULL);
DO \$\$
DECLARE
	t0 timestamptz;
	got boolean;
	deadline timestamptz := clock_timestamp() + interval '$CLAIM_SECONDS seconds';
BEGIN
	FOR i IN 1 .. $CLAIMS LOOP
		EXIT WHEN clock_timestamp() > deadline;
		t0 := clock_timestamp();
		SELECT count(*) > 0 INTO got FROM agent_tasks.claim_runs('peers-claimer', $1);
		INSERT INTO claim_times VALUES (clock_timestamp(), extract(epoch FROM clock_timestamp() - t0) * 1000, got);
		COMMIT;
	END LOOP;
END
\$\$;
\if :ERROR
SELECT 'cut', extract(epoch FROM clock_timestamp() - max(ended)) * 1000 FROM claim_times;
\endif
SELECT ms, claimed FROM claim_times WHERE ms IS NOT NULL;
SQL
    grep -v '^cut' "$WORK/claims-$2.txt" | cut -d' ' -f1 >"$WORK/claims-$2.ms" || true
    grep '^cut' "$WORK/claims-$2.txt" | cut -d' ' -f2 >>"$WORK/claims-$2.ms" || true
    local done_n claimed_n cut p50 p99
    done_n=$(grep -vc '^cut' "$WORK/claims-$2.txt" || true)
    claimed_n=$(grep -c ' t$' "$WORK/claims-$2.txt" || true)
    cut=$(grep -c '^cut' "$WORK/claims-$2.txt" || true)
    if ((cut == 0)) && grep -q '^ERROR' "$WORK/claims-$2.err"; then
        cat "$WORK/claims-$2.err" >&2
        die "claim latency ($2) failed"
    fi
    read -r p50 p99 < <(percentiles "$WORK/claims-$2.ms")
    CLAIM_RESULT[$2]="$p50 $p99 $done_n $claimed_n $cut"
}
declare -A CLAIM_RESULT

apply_settings fast
say "claim case (c): $CHILDREN queued children of a parent held FOR UPDATE, $CLAIMS runs of other tasks behind them"
PARENT=$(q -d "$AT_DB" -c "SET session_replication_role = replica" -c "
    INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status)
    VALUES ('claims', 'locked parent', 'peers', 'in_progress') RETURNING id")
bulk_runs "$CHILDREN" child queued 3 "'$PARENT'::uuid"
bulk_runs $((CLAIMS + 10)) target queued 1
start_helper "$WORK/locker.out" env PGAPPNAME=peers-locker psql -X -q -v ON_ERROR_STOP=1 -d "$AT_DB" -c "
    BEGIN;
    SELECT 1 FROM agent_tasks_internal.tasks WHERE account = 'claims' AND id = '$PARENT' FOR UPDATE;
    SELECT pg_sleep($((CLAIM_SECONDS * 2 + 60)));
    COMMIT;"
LOCKER_PID=$HELPER_PID
for i in $(seq 1 101); do    # sleeping means the lock is held
    [[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'peers-locker' AND wait_event = 'PgSleep'")" == 1 ]] && break
    ((i < 101)) || { cat "$WORK/locker.out.err" >&2; die "the locking session did not lock the parent"; }
    sleep 0.1
done
claim_latency NULL c
CHECK_C=$(q -d "$AT_DB" -c "SELECT count(*) FROM agent_tasks_internal.runs r JOIN agent_tasks_internal.tasks t ON t.account = r.account AND t.id = r.task_id WHERE t.account = 'claims' AND t.parent_id = '$PARENT' AND r.status <> 'queued'")
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'peers-locker'" >/dev/null
finish_helper "$LOCKER_PID" || true
q -d "$AT_DB" -c "DELETE FROM agent_tasks_internal.tasks WHERE account = 'claims' AND (id = '$PARENT' OR parent_id = '$PARENT')" >/dev/null

say "claim case (a): loading $DEEP queued runs of agent 'limited' (superuser, session_replication_role = replica)"
bulk_runs "$DEEP" limited queued 3
bulk_runs $((CLAIMS + 10)) target queued 1
claim_latency "ARRAY['target']" a

say "claim case (b): agent 'limited' at its concurrency limit ($LIMITED_CONCURRENCY in progress) with its $DEEP backlog, claiming for any agent"
bulk_runs "$LIMITED_CONCURRENCY" limited in_progress 3
bulk_runs $((CLAIMS + 10)) target queued 1
claim_latency NULL b
CHECK_B=$(q -d "$AT_DB" -c "SELECT count(*) FROM agent_tasks_internal.runs r JOIN agent_tasks_internal.agents a ON a.account = r.account AND a.id = r.agent_id WHERE a.account = 'claims' AND a.name = 'limited' AND r.status = 'in_progress'")

# --- figures ---------------------------------------------------------------
metric() { # setting system tput|cpu|wal|rows -> "min median max" over rounds
    awk -F'\t' -v s="$1" -v y="$2" -v m="$3" -v hz="$CLK_TCK" '
        $1 == s && $3 == y && $2 ~ /^[0-9]+$/ {
            print (m == "tput" ? $4 / $5 : m == "cpu" ? $6 * 1000 / hz / $4 : m == "wal" ? $7 / $4 : $8 / $4) }' "$RESULTS" |
        sort -g | awk '{v[NR] = $1}
            END {printf "%s %s %s\n", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR]}'
}
ratio() { # setting other-system -> "ratio-of-medians lowest-round highest-round"
    local am om
    read -r _ am _ < <(metric "$1" agent_tasks tput)
    read -r _ om _ < <(metric "$1" "$2" tput)
    awk -F'\t' -v s="$1" -v o="$2" -v am="$am" -v om="$om" '
        $1 == s && $3 == "agent_tasks" && $2 ~ /^[0-9]+$/ {a[$2] = $4 / $5}
        $1 == s && $3 == o && $2 ~ /^[0-9]+$/ {b[$2] = $4 / $5}
        END {
            for (r in a) {x = a[r] / b[r]; if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x}
            printf "%.3f %.3f %.3f\n", am / om, lo, hi
        }' "$RESULTS"
}
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN {ok = op == "<=" ? x <= t : x >= t; print ok ? "met" : "NOT met"}'; }

LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
printf '\n=== peers benchmark (issue 9) ===\n'
printf 'machine: %s cores, %s, %s GiB RAM; PostgreSQL %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
    "$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)" "$PG_VERSION"
printf 'load average at start %s, at end %s (other work on the machine makes figures noisy)\n' "$LOAD_AT_START" "$LOAD_AT_END"
printf 'durable: fsync = on, synchronous_commit = on; fast: both off; full_page_writes = off at both\n'
printf '%s items per round, %s clients, %s rounds per setting; agent_tasks: %s executors; graphile-worker: concurrency %s;\n' \
    "$ITEMS" "$CLIENTS" "$ROUNDS" "$EXECUTORS" "$GW_CONCURRENCY"
printf 'pg-boss: %s workers x batchSize %s, polling every 0.5 s\n' "$BOSS_WORKERS" "$BOSS_BATCH"
printf 'idle cluster CPU (in every round'"'"'s figure): %s ms per second\n\n' "$IDLE_CPU"

printf '%-8s %-24s %-26s %-22s %-22s %s\n' setting system "items/s min / med / max" "CPU ms/item med (range)" "WAL B/item med (range)" "rows/item med"
for setting in durable fast; do
    for sys in "${SYSTEMS[@]}"; do
        read -r t1 t2 t3 < <(metric "$setting" "$sys" tput)
        read -r c1 c2 c3 < <(metric "$setting" "$sys" cpu)
        read -r w1 w2 w3 < <(metric "$setting" "$sys" wal)
        read -r _ r2 _ < <(metric "$setting" "$sys" rows)
        printf '%-8s %-24s %-26s %-22s %-22s %.2f\n' "$setting" "${LABEL[$sys]}" \
            "$(printf '%.0f / %.0f / %.0f' "$t1" "$t2" "$t3")" "$(printf '%.3f (%.3f-%.3f)' "$c2" "$c1" "$c3")" \
            "$(printf '%.0f (%.0f-%.0f)' "$w2" "$w1" "$w3")" "$r2"
    done
done
printf '\n%-8s %-44s %s\n' setting "ratio of median items/s" "(per-round range)"
for setting in durable fast; do
    for sys in hooked graphile pgboss pgbench; do
        read -r m lo hi < <(ratio "$setting" "$sys")
        printf '%-8s %-44s %.3f  (%.3f-%.3f)\n' "$setting" "agent_tasks / ${LABEL[$sys]}" "$m" "$lo" "$hi"
    done
done

printf '\nagent_tasks profile round (fast, %s tasks, pg_stat_statements track = all): top 10 by total time, waits for locks included\n%s\n' "$ITEMS" "$PROFILE"

printf '\nclaim latency, claim_runs() as an agent_tasks_worker role, one run per claim, %s claims or %s s\n' "$CLAIMS" "$CLAIM_SECONDS"
declare -A CLAIM_CASE=(
    [a]="(a) $DEEP queued runs of another agent, claims filtered to an agent with $((CLAIMS + 10))"
    [b]="(b) agent at its limit ($LIMITED_CONCURRENCY) holding $DEEP queued, claims for any agent"
    [c]="(c) $CHILDREN queued children of a parent held FOR UPDATE, claims for any run"
)
for c in a b c; do
    read -r p50 p99 n got cut <<<"${CLAIM_RESULT[$c]}"
    printf '  %-92s p50 %s ms, p99 %s%s ms; %s claims done, %s got a run%s\n' "${CLAIM_CASE[$c]}" "$p50" \
        "$( ((cut > 0)) && echo '>= ')" "$p99" "$n" "$got" "$( ((cut > 0)) && echo ", the last cancelled after ${CLAIM_SECONDS}+30 s")"
done
printf '  checks: runs of the locked parent'"'"'s children taken by case (c): %s (0 expected); runs in progress of the agent at its limit after case (b): %s (%s expected)\n' \
    "$CHECK_C" "$CHECK_B" "$LIMITED_CONCURRENCY"
printf '\nwake-up latency (%s tasks one at a time, idle executors), commit of the queued run ->\n' "$WAKEUPS"
printf '  claimed (inside the claim, as engine.sh): durable p50 %s p99 %s ms; fast p50 %s p99 %s ms\n' \
    "$WAKE_DURABLE_CLAIMED_P50" "$WAKE_DURABLE_CLAIMED_P99" "$WAKE_FAST_CLAIMED_P50" "$WAKE_FAST_CLAIMED_P99"
printf '  in_progress visible to others (claim committed): durable p50 %s p99 %s ms; fast p50 %s p99 %s ms\n' \
    "$WAKE_DURABLE_P50" "$WAKE_DURABLE_P99" "$WAKE_FAST_P50" "$WAKE_FAST_P99"

printf '\n%-52s %-22s %-22s\n' "target (issue 9; medians over rounds)" durable fast
read -r gd _ _ < <(ratio durable graphile)
read -r gf _ _ < <(ratio fast graphile)
printf '%-52s %-22s %-22s\n' "lifecycle >= 3.0x graphile-worker" \
    "$(printf '%.2fx %s' "$gd" "$(verdict "$gd" '>=' 3.0)")" "$(printf '%.2fx %s' "$gf" "$(verdict "$gf" '>=' 3.0)")"
read -r _ cd _ < <(metric durable agent_tasks cpu)
read -r _ cf _ < <(metric fast agent_tasks cpu)
printf '%-52s %-22s %-22s\n' "server CPU <= 0.5 ms per task" \
    "$(printf '%.3f ms %s' "$cd" "$(verdict "$cd" '<=' 0.5)")" "$(printf '%.3f ms %s' "$cf" "$(verdict "$cf" '<=' 0.5)")"
read -r _ wd _ < <(metric durable agent_tasks wal)
read -r _ wf _ < <(metric fast agent_tasks wal)
printf '%-52s %-22s %-22s\n' "WAL <= 1.5 kB (1536 B) per task" \
    "$(printf '%.0f B %s' "$wd" "$(verdict "$wd" '<=' 1536)")" "$(printf '%.0f B %s' "$wf" "$(verdict "$wf" '<=' 1536)")"
for c in a b c; do
    read -r _ p99 _ _ cut <<<"${CLAIM_RESULT[$c]}"
    v=$(verdict "$p99" '<=' 5)
    ((cut > 0)) && v="NOT met"
    printf '%-52s %-22s %-22s\n' "claim p99 <= 5 ms, case ($c)" "" "$( ((cut > 0)) && printf '>= ')$p99 ms $v"
done
printf '%-52s %-22s %-22s\n' "wake-up p50 <= 1 ms (commit -> visible), idle" \
    "$WAKE_DURABLE_P50 ms $(verdict "$WAKE_DURABLE_P50" '<=' 1)" "$WAKE_FAST_P50 ms $(verdict "$WAKE_FAST_P50" '<=' 1)"
}
