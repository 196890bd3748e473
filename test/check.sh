#!/usr/bin/env bash
# The README's test command: install what is missing, build, start one
# throwaway cluster (agent_tasks and pg_cron preloaded) and run every suite,
# continuing past failures.  The last line of output is always
#   N passed, N failed
# and the exit status is non-zero when anything failed or could not run.
#
# Suites, in order:
#   regression  sql/*.sql vs expected/*.out (pg_regress, db contrib_regression)
#   isolation   test/isolation/specs/*.spec vs test/isolation/expected/*.out
#   tap         test/tap/t/*.pl (prove; PostgreSQL::Test::Cluster makes its own nodes)
#   <name>      every executable test/<name>/run.sh (except test/bench), run as
#               the caller from the repo root with PG* and DATABASE_URL pointing at
#               the cluster; its last output line must be "N passed, N failed"
# Per-suite time limits (seconds): AT_TIMEOUT_REGRESS (600), AT_TIMEOUT_ISOLATION
# (600), AT_TIMEOUT_TAP (1500), AT_TIMEOUT_SUITE (900, each run.sh suite).
# Outputs of failed suites are copied to tmp_check/<suite>/ in the repo
# (cleared at the start of a run, as is test/tap/tmp_check/).
# A suite that needs a missing command fails at once, naming it.  After each
# suite, processes it left running are reported as a failure of
# "<suite>-leftovers" and killed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

SUITE_NAMES=() SUITE_PASS=() SUITE_FAIL=() SUITE_NOTE=()
TOTAL_PASS=0 TOTAL_FAIL=0 HAD_ERROR=0 SUMMARY_DONE=0

record() { # name pass fail [note]
    SUITE_NAMES+=("$1") SUITE_PASS+=("$2") SUITE_FAIL+=("$3") SUITE_NOTE+=("${4:-}")
    TOTAL_PASS=$((TOTAL_PASS + $2)) TOTAL_FAIL=$((TOTAL_FAIL + $3))
}
record_error() { record "$1" 0 1 "$2"; HAD_ERROR=1; }
record_skip()  { record "$1" 0 0 "skipped: $2"; }

indent() { sed -u 's/^/    /'; }
header() { printf '\n=== %s ===\n' "$*"; }

# Sorted (C collation, as make's $(sort)) basenames of files matching a glob.
sorted_names() { # dir suffix
    local f
    for f in "$1"/*"$2"; do [[ -e "$f" ]] && basename "$f" "$2"; done | LC_ALL=C sort
}

# Keep failing outputs in the repo for inspection after the temp dir is gone.
keep_outputs() { # suite dir
    local dest="$REPO_ROOT/tmp_check/$1"
    { rm -rf "$dest" && mkdir -p "$dest" && cp -r "$2"/. "$dest"/; } 2>/dev/null \
        && echo "    (outputs kept in tmp_check/$1/)" || true
}

# pg_regress / pg_isolation_regress print one "... ok" / "... FAILED" line per test.
parse_regress() { # suite log rc
    local pass fail
    pass=$(grep -cE '\.\.\. +ok( |$)' "$2" || true)
    fail=$(grep -cE '\.\.\. +(FAILED|failed)' "$2" || true)
    if [[ "$3" -ne 0 && "$fail" -eq 0 ]]; then
        record "$1" "$pass" 1 "runner exited with status $3"; HAD_ERROR=1
    else
        record "$1" "$pass" "$fail"
    fi
}

# A suite whose commands are missing fails at once, in one line.
suite_needs() { # suite command...
    local suite="$1" missing; shift
    missing="$(missing_commands "$@")"
    [[ -z "$missing" ]] && return 0
    echo "    missing commands: $missing (test/setup.sh installs them)"
    record_error "$suite" "missing commands: $missing"
    return 1
}

show_diffs() { # diffs-file
    [[ -s "$1" ]] || return 0
    echo "    --- $(basename "$1") (first 300 lines) ---"
    head -n 300 "$1" | indent
}

# Shared by the regression and isolation suites: same runner interface.
run_regress_suite() { # suite runner inputdir dbname tests...
    local suite="$1" runner="$2" inputdir="$3" db="$4" timeout_s="$5"; shift 5
    local out="$CLUSTER_DIR/out/$suite" log="$CLUSTER_DIR/out/$suite.log" rc=0
    as_pg mkdir -p "$out"
    run_logged "$log" in_dir "$inputdir" \
        as_pg timeout -k 10 "$timeout_s" "$runner" --bindir="$PG_BINDIR" \
            --host=127.0.0.1 --port="$PGPORT" --user=postgres \
            --inputdir="$inputdir" --outputdir="$out" \
            --load-extension=agent_tasks --dbname="$db" "$@" || rc=$?
    [[ "$rc" -eq 124 ]] && echo "    TIMEOUT after ${timeout_s}s"
    parse_regress "$suite" "$log" "$rc"
    if [[ "$rc" -ne 0 ]]; then
        show_diffs "$out/regression.diffs"
        keep_outputs "$suite" "$out"
    fi
}

suite_regression() {
    header regression
    local tests
    mapfile -t tests < <(sorted_names "$CLUSTER_WORK/sql" .sql)
    if ((${#tests[@]} == 0)); then echo "    no sql/*.sql"; record_skip regression "no tests"; return 0; fi
    suite_needs regression "$PG_REGRESS_BIN" || return 0
    run_regress_suite regression "$PG_REGRESS_BIN" "$CLUSTER_WORK" \
        "${AGENT_TASKS_REGRESS_DB:-contrib_regression}" "${AT_TIMEOUT_REGRESS:-600}" "${tests[@]}"
}

suite_isolation() {
    header isolation
    local dir="$CLUSTER_WORK/test/isolation" tests
    mapfile -t tests < <(sorted_names "$dir/specs" .spec)
    if ((${#tests[@]} == 0)); then echo "    no test/isolation/specs/*.spec"; record_skip isolation "no specs"; return 0; fi
    suite_needs isolation "$PG_ISOLATION_REGRESS_BIN" || return 0
    run_regress_suite isolation "$PG_ISOLATION_REGRESS_BIN" "$dir" \
        isolation_regression "${AT_TIMEOUT_ISOLATION:-600}" "${tests[@]}"
}

# Nodes of a killed TAP run would outlive it: stop them by their data dir,
# printing the name of each node that was still running.
stop_stray_tap_nodes() { # dir
    local pidfile data
    while IFS= read -r pidfile; do
        data="$(dirname "$pidfile")"
        as_pg pg_ctl -D "$data" status >/dev/null 2>&1 || continue
        as_pg pg_ctl -D "$data" -m immediate -s stop >/dev/null 2>&1 || true
        basename "$(dirname "$data")"
    done < <(find "$1" -name postmaster.pid 2>/dev/null)
}

# prove, IPC::Run, PostgreSQL's test modules; node and npm for the
# dispatcher crash test's receiver.
tap_prerequisites() {
    suite_needs tap prove node npm || return 1
    if ! perl -MIPC::Run -e 1 2>/dev/null; then
        echo "    missing the perl module IPC::Run (libipc-run-perl)"
        record_error tap "missing the perl module IPC::Run"; return 1
    fi
    if [[ ! -f "$PG_PERL_LIB/PostgreSQL/Test/Cluster.pm" ]]; then
        echo "    missing $PG_PERL_LIB/PostgreSQL/Test/Cluster.pm (postgresql-server-dev-15)"
        record_error tap "missing PostgreSQL::Test::Cluster"; return 1
    fi
}

suite_tap() {
    header tap
    local dir="$CLUSTER_WORK/test/tap" tests log="$CLUSTER_DIR/out/tap.log" rc=0 t
    mapfile -t tests < <(sorted_names "$dir/t" .pl)
    if ((${#tests[@]} == 0)); then echo "    no test/tap/t/*.pl"; record_skip tap "no tests"; return 0; fi
    tap_prerequisites || return 0
    for t in "${!tests[@]}"; do tests[t]="t/${tests[t]}.pl"; done
    mkdir -p "$CLUSTER_DIR/out"
    as_pg mkdir -p "$dir/tmp_check" "$CLUSTER_DIR/tmp"
    # The layout PGXS's prove_installcheck uses: cwd = suite dir, TESTDIR
    # there (tmp_check/ and logs go under it), PG 15 binaries first in PATH.
    # TMPDIR: the nodes' socket dirs stay inside the cluster's temp dir.
    run_logged "$log" in_dir "$dir" \
        as_pg timeout -k 30 "${AT_TIMEOUT_TAP:-1500}" env \
            TESTDIR="$dir" PG_REGRESS="$PG_REGRESS_BIN" TMPDIR="$CLUSTER_DIR/tmp" \
            PERL5LIB="$PG_PERL_LIB:$dir${PERL5LIB:+:$PERL5LIB}" \
            PATH="$PG_BINDIR:$PATH" \
            prove --timer -I "$PG_PERL_LIB" -I "$dir" "${tests[@]}" || rc=$?
    [[ "$rc" -eq 124 ]] && echo "    TIMEOUT after ${AT_TIMEOUT_TAP:-1500}s"
    local strays
    strays="$(stop_stray_tap_nodes "$dir/tmp_check" | paste -sd ' ')"
    parse_prove tap "$log" "$rc"
    if [[ -n "$strays" ]]; then
        echo "    nodes left running, stopped: $strays"
        record_error tap-leftovers "nodes left running: $strays"
    fi
    if [[ "$rc" -ne 0 ]]; then
        show_tap_logs "$log" "$dir/tmp_check/log"
        keep_outputs tap "$dir/tmp_check/log"
    fi
}

# prove: "Files=F, Tests=N, ..." holds the subtest total; the summary table
# has one "t/x.pl (Wstat: .. Tests: N Failed: X)" line per bad file.  A file
# that died without a failing subtest counts as one failure.
parse_prove() { # suite log rc
    local total fail=0 sub_failed=0 f pass
    total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$2" | tail -n1)
    if [[ -z "$total" ]]; then
        record "$1" 0 1 "prove produced no summary (status $3)"; HAD_ERROR=1; return 0
    fi
    while IFS= read -r f; do
        sub_failed=$((sub_failed + f))
        fail=$((fail + (f > 0 ? f : 1)))
    done < <(sed -nE 's/^\S+ +\(Wstat: .* Tests: [0-9]+ Failed: ([0-9]+)\)$/\1/p' "$2")
    pass=$((total - sub_failed))
    ((pass < 0)) && pass=0
    if [[ "$3" -ne 0 && "$fail" -eq 0 ]]; then
        record "$1" "$pass" 1 "prove exited with status $3"; HAD_ERROR=1
    else
        record "$1" "$pass" "$fail"
    fi
}

show_tap_logs() { # prove-log logdir
    local name
    while IFS= read -r name; do
        local f="$2/regress_log_$name"
        [[ -f "$f" ]] || continue
        echo "    --- tail of regress_log_$name ---"
        tail -n 80 "$f" | indent
    done < <(sed -nE 's/^t\/(\S+)\.pl +\(Wstat: .*/\1/p' "$1")
}

# Pluggable suites: test/<name>/run.sh prints "N passed, N failed" last.
suite_external() { # dir
    local name; name="$(basename "$1")"
    header "$name"
    local log="$CLUSTER_DIR/out/$name.log" rc=0 last tmp
    mkdir -p "$CLUSTER_DIR/out"
    tmp="$(make_pg_tmpdir)"; on_exit "rm -rf '$tmp'"
    # npm's cache goes to the suite's scratch space, not the caller's home.
    AT_SUITE_TMP="$tmp" npm_config_cache="$tmp/npm-cache" run_logged "$log" in_dir "$REPO_ROOT" \
        timeout -k 10 "${AT_TIMEOUT_SUITE:-900}" "$1/run.sh" || rc=$?
    rm -rf "$tmp"
    [[ "$rc" -eq 124 ]] && echo "    TIMEOUT after ${AT_TIMEOUT_SUITE:-900}s"
    last="$(grep -v '^[[:space:]]*$' "$log" | tail -n1 || true)"
    if [[ "$last" =~ ^[[:space:]]*([0-9]+)\ passed,\ ([0-9]+)\ failed[[:space:]]*$ ]]; then
        local p="${BASH_REMATCH[1]}" f="${BASH_REMATCH[2]}"
        if [[ "$rc" -ne 0 && "$f" -eq 0 ]]; then
            record "$name" "$p" 1 "exited with status $rc"; HAD_ERROR=1
        else
            record "$name" "$p" "$f"
        fi
    else
        record_error "$name" "no 'N passed, N failed' last line (status $rc)"
    fi
}

external_suites() {
    local d
    for d in "$REPO_ROOT"/test/*/; do
        d="${d%/}"
        case "$(basename "$d")" in bench|tap|isolation) continue ;; esac
        [[ -x "$d/run.sh" ]] && echo "$d"
    done | LC_ALL=C sort
}

# --- what a suite leaves behind -----------------------------------------------
# Every process started once the watch is on inherits AGENT_TASKS_CHECK_RUN
# (also when orphaned or run as postgres) and /proc shows it: that finds a
# suite's processes without touching anyone else's, other clusters included.
start_leftover_watch() {
    export AGENT_TASKS_CHECK_RUN="$$.$RANDOM"
}

# Is the process the given postmaster or one of its descendants?
in_process_tree() { # pid root-pid
    local pid="$1" stat
    while ((pid > 1)); do
        [[ "$pid" == "$2" ]] && return 0
        read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
        read -r _ pid _ <<<"${stat##*") "}"   # state, ppid, ... after "pid (comm) "
    done
    return 1
}

# Pids of the marked processes, except the cluster's server (which may have
# been restarted with the mark).  Builtins only: a command run here would be
# marked itself.
marked_processes() {
    local d env e postmaster=""
    [[ -r "$CLUSTER_DATA/postmaster.pid" ]] && read -r postmaster <"$CLUSTER_DATA/postmaster.pid"
    for d in /proc/[0-9]*; do
        mapfile -d '' env 2>/dev/null <"$d/environ" || continue
        for e in "${env[@]}"; do
            [[ "$e" == "AGENT_TASKS_CHECK_RUN=$AGENT_TASKS_CHECK_RUN" ]] || continue
            [[ -n "$postmaster" ]] && in_process_tree "${d#/proc/}" "$postmaster" || echo "${d#/proc/}"
            break
        done
    done
}

# After a suite: its processes get 3 s to exit; the others are a failure of
# the suite, and are killed.
check_leftovers() { # suite
    local pids=() alive i p argv cmd desc=() note
    for ((i = 0; i < 30; i++)); do
        mapfile -t pids < <(marked_processes)
        ((${#pids[@]} == 0)) && break
        sleep 0.1
    done
    ((${#pids[@]} == 0)) && return 0
    for p in "${pids[@]}"; do
        mapfile -d '' argv 2>/dev/null <"/proc/$p/cmdline" || continue
        cmd="${argv[*]}"
        desc+=("$p $(stat -c %U "/proc/$p" 2>/dev/null): ${cmd:0:100}")
    done
    ((${#desc[@]} == 0)) && return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        alive=()
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
        ((${#alive[@]} == 0)) && break
        sleep 0.1
    done
    ((${#alive[@]} == 0)) || kill -KILL "${alive[@]}" 2>/dev/null || true
    echo "    '$1' left processes running (killed):"
    printf '      %s\n' "${desc[@]}"
    note="$(printf '%s; ' "${desc[@]}")"; note="${note%; }"
    record_error "$1-leftovers" "processes left running: ${note:0:200}"
}

# Run one suite, then look for what it left behind and make sure the server
# is up for the next.
run_suite() { # name function [args]
    local name="$1"; shift
    "$@"
    check_leftovers "$name"
    ensure_cluster "$name" || die "could not restart the server"
}

# A suite may take the server down; say so and bring it back for the next.
ensure_cluster() { # after-suite
    cluster_alive && return 0
    echo "    server is down after suite '$1'"
    _cluster_show_log
    record_error "$1-server" "server died during '$1'"
    as_pg pg_ctl -D "$CLUSTER_DATA" -l "$CLUSTER_LOG" -w -t 60 -s start >/dev/null 2>&1 \
        || { _cluster_show_log; return 1; }
}

print_summary() {
    SUMMARY_DONE=1
    header summary
    local i
    for i in "${!SUITE_NAMES[@]}"; do
        printf '  %-14s %4d passed, %4d failed%s\n' "${SUITE_NAMES[i]}" \
            "${SUITE_PASS[i]}" "${SUITE_FAIL[i]}" "${SUITE_NOTE[i]:+   (${SUITE_NOTE[i]})}"
    done
    printf '%d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
}

# If setup or cluster start dies, or we are interrupted, still end with the summary line.
_final_line_on_death() {
    [[ "$SUMMARY_DONE" == 1 ]] && return 0
    record_error aborted "check did not finish (see above)"
    print_summary
}

main() {
    on_exit _final_line_on_death
    # Outputs of an earlier run would pass for this run's.
    rm -rf "$REPO_ROOT/tmp_check" "$REPO_ROOT/test/tap/tmp_check"
    "$REPO_ROOT/test/setup.sh" || die "test/setup.sh failed"
    cluster_start
    start_leftover_watch

    run_suite regression suite_regression
    run_suite isolation suite_isolation
    run_suite tap suite_tap
    local d
    while IFS= read -r d; do
        run_suite "$(basename "$d")" suite_external "$d"
    done < <(external_suites)

    cluster_stop
    print_summary
    ((TOTAL_FAIL == 0 && HAD_ERROR == 0))
}

main "$@"
