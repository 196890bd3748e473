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
# Outputs of failed suites are copied to tmp_check/<suite>/ in the repo.
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
    run_regress_suite regression "$PG_REGRESS_BIN" "$CLUSTER_WORK" \
        "${AGENT_TASKS_REGRESS_DB:-contrib_regression}" "${AT_TIMEOUT_REGRESS:-600}" "${tests[@]}"
}

suite_isolation() {
    header isolation
    local dir="$CLUSTER_WORK/test/isolation" tests
    mapfile -t tests < <(sorted_names "$dir/specs" .spec)
    if ((${#tests[@]} == 0)); then echo "    no test/isolation/specs/*.spec"; record_skip isolation "no specs"; return 0; fi
    run_regress_suite isolation "$PG_ISOLATION_REGRESS_BIN" "$dir" \
        isolation_regression "${AT_TIMEOUT_ISOLATION:-600}" "${tests[@]}"
}

# Nodes of a killed TAP run would outlive it: stop them by their data dir.
stop_stray_tap_nodes() { # dir
    local pidfile
    while IFS= read -r pidfile; do
        as_pg pg_ctl -D "$(dirname "$pidfile")" -m immediate -s stop >/dev/null 2>&1 || true
    done < <(find "$1" -name postmaster.pid 2>/dev/null)
}

suite_tap() {
    header tap
    local dir="$CLUSTER_WORK/test/tap" tests log="$CLUSTER_DIR/out/tap.log" rc=0 t
    mapfile -t tests < <(sorted_names "$dir/t" .pl)
    if ((${#tests[@]} == 0)); then echo "    no test/tap/t/*.pl"; record_skip tap "no tests"; return 0; fi
    for t in "${!tests[@]}"; do tests[t]="t/${tests[t]}.pl"; done
    mkdir -p "$CLUSTER_DIR/out"
    as_pg mkdir -p "$dir/tmp_check"
    # The layout PGXS's prove_installcheck uses: cwd = suite dir, TESTDIR
    # there (tmp_check/ and logs go under it), PG 15 binaries first in PATH.
    run_logged "$log" in_dir "$dir" \
        as_pg timeout -k 30 "${AT_TIMEOUT_TAP:-1500}" env \
            TESTDIR="$dir" PG_REGRESS="$PG_REGRESS_BIN" \
            PERL5LIB="$PG_PERL_LIB:$dir${PERL5LIB:+:$PERL5LIB}" \
            PATH="$PG_BINDIR:$PATH" \
            prove --timer -I "$PG_PERL_LIB" -I "$dir" "${tests[@]}" || rc=$?
    [[ "$rc" -eq 124 ]] && echo "    TIMEOUT after ${AT_TIMEOUT_TAP:-1500}s"
    stop_stray_tap_nodes "$dir/tmp_check"
    parse_prove tap "$log" "$rc"
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
    AT_SUITE_TMP="$tmp" run_logged "$log" in_dir "$REPO_ROOT" \
        timeout -k 10 "${AT_TIMEOUT_SUITE:-900}" "$1/run.sh" || rc=$?
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
    "$REPO_ROOT/test/setup.sh" || die "test/setup.sh failed"
    cluster_start

    suite_regression
    ensure_cluster regression || die "could not restart the server"
    suite_isolation
    ensure_cluster isolation || die "could not restart the server"
    suite_tap
    ensure_cluster tap || die "could not restart the server"
    local d
    while IFS= read -r d; do
        suite_external "$d"
        ensure_cluster "$(basename "$d")" || die "could not restart the server"
    done < <(external_suites)

    cluster_stop
    print_summary
    ((TOTAL_FAIL == 0 && HAD_ERROR == 0))
}

main "$@"
