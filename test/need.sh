# shellcheck shell=bash
# Commands a suite needs, checked before it starts anything: a missing tool
# then costs one clear line instead of timeouts and stack traces.  Source it
# (no side effects), then
#   need psql node curl     # or: prints "missing commands: ..." and the summary
#                           # line "0 passed, 1 failed", and exits 1

# The names of the commands given that are not on PATH, space-separated.
missing_commands() {
    local c missing=()
    for c; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    echo "${missing[*]}"
}

need() {
    local missing
    missing="$(missing_commands "$@")"
    [[ -z "$missing" ]] && return 0
    echo "missing commands: $missing (test/setup.sh installs them)"
    echo "0 passed, 1 failed"
    exit 1
}
