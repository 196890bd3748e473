# shellcheck shell=bash
# Shared helpers for the agent_tasks build/test/demo scripts.  Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It defines no side effects beyond variables, functions and an EXIT trap
# that runs the cleanups registered with on_exit.

[[ -n "${_AT_LIB_SH:-}" ]] && return 0
_AT_LIB_SH=1
. "$(dirname "${BASH_SOURCE[0]}")/need.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# PostgreSQL 15 is pinned: /usr/local/bin may hold unrelated tools of the same name.
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
PGXS_DIR="${PGXS_DIR:-/usr/lib/postgresql/15/lib/pgxs}"
PG_REGRESS_BIN="$PGXS_DIR/src/test/regress/pg_regress"
PG_ISOLATION_REGRESS_BIN="$PGXS_DIR/src/test/isolation/pg_isolation_regress"
PG_PERL_LIB="$PGXS_DIR/src/test/perl"
# Base for temp dirs: must be traversable by the unprivileged user (the clone may not be).
AT_TMPBASE="${AT_TMPBASE:-/tmp}"
# HOME of the unprivileged user's commands, where tools keep dotfiles (npm's
# cache): cluster_start moves it into the cluster's temp dir, so nothing the
# user writes outlives the run.
AT_PG_HOME="${AT_PG_HOME:-$AT_TMPBASE}"
export PG_CONFIG

say()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Privileged command: root runs it directly, anyone else through sudo.
as_root() {
    if is_root; then
        "$@"
    else
        command -v sudo >/dev/null 2>&1 || die "need root for: $* (run as root or install sudo)"
        sudo "$@"
    fi
}

# PostgreSQL refuses to run as root, so servers and test runners run as
# 'postgres' when we are root, and as ourselves otherwise.
pg_os_user() {
    if is_root; then echo postgres; else id -un; fi
}

# Run a command as the unprivileged user, keeping the caller's environment
# explicitly (runuser would reset HOME/USER and may reset PATH).
as_pg() {
    if is_root; then
        id postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (is postgresql-15 installed?)"
        runuser -u postgres -- env HOME="$AT_PG_HOME" USER=postgres LOGNAME=postgres PATH="$PATH" "$@"
    else
        "$@"
    fi
}

# Cleanups run in reverse registration order on any exit (including errors
# and INT/TERM), so clusters never outlive the script.
_AT_CLEANUPS=()
_AT_BG_PID=""
on_exit() { _AT_CLEANUPS+=("$*"); }
_at_run_cleanups() {
    local rc=$? i
    trap - EXIT
    for (( i=${#_AT_CLEANUPS[@]}-1; i>=0; i-- )); do
        eval "${_AT_CLEANUPS[i]}" || true
    done
    exit "$rc"
}
# A process and its descendants, children first (by pid, from /proc).
_at_kill_tree() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do _at_kill_tree "$c"; done
    kill -TERM "$1" 2>/dev/null || true
}
_at_on_signal() {
    [[ -n "$_AT_BG_PID" ]] && _at_kill_tree "$_AT_BG_PID"
    exit "$1"
}
trap _at_run_cleanups EXIT
trap '_at_on_signal 130' INT
trap '_at_on_signal 143' TERM

# Run a long command in the background and wait for it: bash defers traps
# while a foreground command runs, so this keeps Ctrl-C / CI cancel prompt
# (suites run under timeout(1), which sits in its own process group).
run_fg() {
    local rc=0
    "$@" & _AT_BG_PID=$!
    wait "$_AT_BG_PID" || rc=$?
    _AT_BG_PID=""
    return "$rc"
}

# Run a command with its output indented on stdout and saved to LOG; the
# status is the command's (pipefail: tee and sed succeed).
run_logged() { # log cmd...
    local log="$1"; shift
    run_fg _at_pipe_to_log "$log" "$@"
}
_at_pipe_to_log() {
    local log="$1"; shift
    "$@" 2>&1 </dev/null | tee "$log" | sed -u 's/^/    /'
}

# Run a command in a directory (for run_logged / as_pg chains).
in_dir() { # dir cmd...
    cd "$1" || return 1
    shift
    "$@"
}

# Fresh temp dir owned by the unprivileged user.
make_pg_tmpdir() {
    local d
    d="$(mktemp -d "$AT_TMPBASE/agent_tasks.XXXXXX")"
    chmod 755 "$d"
    if is_root; then chown postgres: "$d"; fi
    echo "$d"
}

# Copy what the unprivileged user must read (regression inputs, test
# fixtures) into DEST, owned by that user: the clone itself may be unreadable.
copy_repo_inputs() {
    local dest="$1" d
    mkdir -p "$dest"
    for d in sql expected test; do
        [[ -d "$REPO_ROOT/$d" ]] || continue
        tar -C "$REPO_ROOT" -cf - \
            --exclude=node_modules --exclude=tmp_check --exclude=results \
            --exclude=output_iso "$d" | tar -C "$dest" -xf -
    done
    if is_root; then chown -R postgres: "$dest"; fi
}
