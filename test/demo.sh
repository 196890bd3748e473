#!/usr/bin/env bash
# The README's demo: install what is missing, build, start a throwaway
# cluster, create the extension and run test/demo.sql.  Cluster is removed
# on exit unless AGENT_TASKS_KEEP=1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

"$REPO_ROOT/test/setup.sh"
cluster_start
cluster_psql -c 'CREATE EXTENSION IF NOT EXISTS agent_tasks CASCADE'
# psql runs as the caller and reads the file itself, so the clone's
# permissions do not matter here.
psql -X -v ON_ERROR_STOP=1 -f "$REPO_ROOT/test/demo.sql"
