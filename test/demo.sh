#!/usr/bin/env bash
# The README's demo: install what is missing, build, start a throwaway
# cluster, create the extension and run test/demo.sql.  Cluster is removed
# on exit unless AGENT_TASKS_KEEP=1; then its settings are written to
# $AT_TMPBASE/agent_tasks_demo.env (default /tmp), for the README's REST
# quickstart: sourcing it exports PGHOST, PGPORT, PGUSER, PGDATABASE and
# DATABASE_URL and defines agent_tasks_demo_stop (stops and removes it).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

write_env_file() { # file
    {
        echo "# The cluster kept by AGENT_TASKS_KEEP=1 ./test/demo.sh; source this file."
        printf 'export PGHOST=%q PGPORT=%q PGUSER=%q PGDATABASE=%q DATABASE_URL=%q\n' \
            "$PGHOST" "$PGPORT" "$PGUSER" "$PGDATABASE" "$DATABASE_URL"
        printf 'agent_tasks_demo_stop() { %s && rm -f %q; }\n' "$(cluster_stop_command)" "$1"
    } >"$1"
}

"$REPO_ROOT/test/setup.sh"
cluster_start
if [[ "${AGENT_TASKS_KEEP:-}" == 1 ]]; then
    write_env_file "$AT_TMPBASE/agent_tasks_demo.env"
    on_exit "say 'settings in $AT_TMPBASE/agent_tasks_demo.env (source it; agent_tasks_demo_stop stops the cluster)'"
fi
cluster_psql -c 'CREATE EXTENSION IF NOT EXISTS agent_tasks CASCADE'
# psql runs as the caller and reads the file itself, so the clone's
# permissions do not matter here.
psql -X -v ON_ERROR_STOP=1 -f "$REPO_ROOT/test/demo.sql"
