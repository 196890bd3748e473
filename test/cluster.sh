# shellcheck shell=bash
# Throwaway PostgreSQL 15 cluster for demo and tests.  Source it, then:
#   cluster_start      initdb + start in a fresh temp dir; stopped and removed on exit
#   cluster_psql ...   psql -X -v ON_ERROR_STOP=1 against it
#   cluster_stop       stop and remove now (also done automatically on exit)
# After cluster_start these are exported:
#   PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=postgres
#   CLUSTER_DIR (temp dir, owned by the server user)  CLUSTER_DATA  CLUSTER_LOG
#   CLUSTER_SOCKDIR (unix socket dir)  CLUSTER_WORK (copy of sql/ expected/ test/)
#   DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres
# Knobs:
#   AGENT_TASKS_PRELOAD     shared_preload_libraries (default 'agent_tasks,pg_cron')
#   AGENT_TASKS_EXTRA_CONF  extra postgresql.conf lines, appended last
#   AGENT_TASKS_KEEP=1      leave the cluster running and the temp dir in place
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AGENT_TASKS_PRELOAD="${AGENT_TASKS_PRELOAD-agent_tasks,pg_cron}"

# A port nobody listens on.  Races are handled by retrying the start.
_free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return 0
        fi
    done
    die "no free TCP port found"
}

_cluster_conf() {
    cat <<EOF

# --- agent_tasks throwaway cluster ---
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$CLUSTER_SOCKDIR'
shared_preload_libraries = '$AGENT_TASKS_PRELOAD'
cron.database_name = 'postgres'
agent_tasks.database = 'postgres'
max_worker_processes = 32
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
logging_collector = off
EOF
    [[ -n "${AGENT_TASKS_EXTRA_CONF:-}" ]] && printf '%s\n' "$AGENT_TASKS_EXTRA_CONF"
    return 0
}

_cluster_show_log() {
    echo "----- server log ($CLUSTER_LOG), last 60 lines -----" >&2
    tail -n 60 "$CLUSTER_LOG" >&2 2>/dev/null || true
    echo "-----" >&2
}

cluster_start() {
    [[ -x "$PG_BINDIR/initdb" ]] || die "PostgreSQL 15 not installed ($PG_BINDIR/initdb missing); run test/setup.sh"
    export PATH="$PG_BINDIR:$PATH"
    CLUSTER_DIR="$(make_pg_tmpdir)"
    CLUSTER_DATA="$CLUSTER_DIR/data"
    CLUSTER_LOG="$CLUSTER_DIR/server.log"
    CLUSTER_SOCKDIR="$CLUSTER_DIR/sock"
    CLUSTER_WORK="$CLUSTER_DIR/work"
    export CLUSTER_DIR CLUSTER_DATA CLUSTER_LOG CLUSTER_SOCKDIR CLUSTER_WORK
    on_exit cluster_stop

    AT_PG_HOME="$CLUSTER_DIR/home"
    as_pg mkdir -p "$CLUSTER_SOCKDIR" "$AT_PG_HOME"
    copy_repo_inputs "$CLUSTER_WORK"

    local out
    if ! out="$(as_pg initdb -D "$CLUSTER_DATA" -U postgres -A trust -E UTF8 --no-locale --no-sync 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "initdb failed"
    fi
    cp "$CLUSTER_DATA/postgresql.conf" "$CLUSTER_DIR/postgresql.conf.orig"

    local port attempt
    for attempt in 1 2 3 4 5; do
        port="$(_free_port)"
        cp "$CLUSTER_DIR/postgresql.conf.orig" "$CLUSTER_DATA/postgresql.conf"
        _cluster_conf "$port" >>"$CLUSTER_DATA/postgresql.conf"
        if as_pg pg_ctl -D "$CLUSTER_DATA" -l "$CLUSTER_LOG" -w -t 60 -s start >/dev/null 2>&1; then
            break
        fi
        # Retry only a lost port race; any other failure is real.
        if grep -q 'could not bind\|Address already in use' "$CLUSTER_LOG" 2>/dev/null && ((attempt < 5)); then
            continue
        fi
        _cluster_show_log
        die "server failed to start (preload: '$AGENT_TASKS_PRELOAD')"
    done

    export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    say "cluster up: port $port, data $CLUSTER_DATA, log $CLUSTER_LOG"
}

cluster_psql() {
    psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# Is the server still up? (A crash during a suite should be reported.)
cluster_alive() {
    [[ -n "${CLUSTER_DATA:-}" ]] && as_pg pg_ctl -D "$CLUSTER_DATA" status >/dev/null 2>&1
}

# A shell command that stops the cluster and removes its temp dir, for
# whoever keeps it (pg_ctl refuses root, as the server does).
cluster_stop_command() {
    local cmd
    cmd="$(printf '%q -D %q -m fast -w stop' "$PG_BINDIR/pg_ctl" "$CLUSTER_DATA")"
    is_root && cmd="runuser -u postgres -- $cmd"
    printf '%s && rm -rf %q\n' "$cmd" "$CLUSTER_DIR"
}

cluster_stop() {
    [[ -n "${CLUSTER_DIR:-}" && -d "$CLUSTER_DIR" ]] || return 0
    if [[ "${AGENT_TASKS_KEEP:-}" == 1 ]]; then
        say "AGENT_TASKS_KEEP=1: cluster left running; stop it with: $(cluster_stop_command)"
        say "  connect: psql 'host=127.0.0.1 port=${PGPORT:-?} user=postgres dbname=postgres'"
        return 0
    fi
    if [[ -f "$CLUSTER_DATA/postmaster.pid" ]]; then
        as_pg pg_ctl -D "$CLUSTER_DATA" -m fast -w -t 30 -s stop >/dev/null 2>&1 \
            || as_pg pg_ctl -D "$CLUSTER_DATA" -m immediate -w -s stop >/dev/null 2>&1 || true
    fi
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=""
}
