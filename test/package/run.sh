#!/usr/bin/env bash
# Packaging: META.json against the PGXN meta spec (pgxn_meta.pl) and against
# the versions of the control file and the Makefile; the Debian package built
# from a copy of the tree (dpkg-buildpackage, pg_buildext), its contents,
# installed with dpkg, and the regression suite run against it on a cluster
# started after the install (a running postmaster keeps the .so it loaded).
# Then the package is purged and `make install` puts back what it replaced,
# since both write the same paths.
#
# Harness contract (test/check.sh): run from the repo root, as root (dpkg)
# or with sudo; it starts a cluster of its own and leaves check.sh's alone.
# The last line is "N passed, N failed".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"

PKG=postgresql-15-agent-tasks
HERE="$REPO_ROOT/test/package"
# The cluster this suite starts must not outlive it.
unset AGENT_TASKS_KEEP

PASS=0 FAIL=0 SUMMARY_DONE=0
ok()  { PASS=$((PASS + 1)); printf 'ok %d - %s\n' $((PASS + FAIL)) "$1"; }
nok() { # name [diagnostic lines...]
    FAIL=$((FAIL + 1)); printf 'not ok %d - %s\n' $((PASS + FAIL)) "$1"; shift
    (($#)) && printf '%s\n' "$@" | sed 's/^/#   /'
    return 0
}
check() { # name actual expected
    if [[ "$2" == "$3" ]]; then ok "$1"; else nok "$1" "got:      $2" "expected: $3"; fi
}
# The last lines of a log, as diagnostics.
log_tail() { tail -n "${2:-30}" "$1"; }
summary() {
    SUMMARY_DONE=1
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
}
# Whatever ends the script, the summary is its last line (cleanups run
# before this one and are quiet).
on_exit '[[ "$SUMMARY_DONE" == 1 ]] || { nok "the suite ran to its end"; summary; }'

# --- what it needs ------------------------------------------------------------
preflight() {
    local cmds=(dpkg dpkg-buildpackage dpkg-checkbuilddeps dpkg-deb dpkg-parsechangelog dpkg-query dh pg_buildext
                make tar perl timeout stat "$PG_CONFIG" "$PG_BINDIR/initdb" "$PG_BINDIR/pg_ctl"
                "$PG_REGRESS_BIN")
    if is_root; then cmds+=(runuser); else cmds+=(sudo); fi
    local c missing=()
    for c in "${cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    perl -MJSON::PP -e 1 2>/dev/null || missing+=("perl module JSON::PP")
    local unmet=""
    if command -v dpkg-checkbuilddeps >/dev/null 2>&1; then
        unmet="$(dpkg-checkbuilddeps "$REPO_ROOT/debian/control" 2>&1 | sed -n 's/.*Unmet build dependencies: //p')"
    fi
    [[ -n "$unmet" ]] && missing+=("build dependencies: $unmet")
    if ((${#missing[@]})); then
        echo "missing: ${missing[*]} (test/setup.sh installs them)"
        FAIL=1 summary
        exit 1
    fi
}
preflight

TMP="$(make_pg_tmpdir)"
on_exit "rm -rf '$TMP'"
EXTVERSION="$(sed -nE 's/^EXTVERSION[[:space:]]*=[[:space:]]*([^[:space:]]+).*/\1/p' "$REPO_ROOT/Makefile")"
DEFAULT_VERSION="$(sed -nE "s/^default_version[[:space:]]*=[[:space:]]*'([^']*)'.*/\1/p" "$REPO_ROOT/agent_tasks.control")"
PKGLIBDIR="$("$PG_CONFIG" --pkglibdir)"
EXTDIR="$("$PG_CONFIG" --sharedir)/extension"

# --- META.json ------------------------------------------------------------------
# A field of a JSON file, by a path of keys ("provides agent_tasks file").
json_field() { # file key...
    perl -MJSON::PP -e 'my $v = JSON::PP->new->decode(do { local $/; open my $f, "<", shift or die; <$f> });
                         $v = ref $v eq "HASH" ? $v->{$_} : undef for @ARGV; print $v // ""' "$@"
}

out="$(perl "$HERE/pgxn_meta.pl" "$REPO_ROOT/META.json" 2>&1)" \
    && ok "META.json is valid against the PGXN meta spec 1.0.0" \
    || nok "META.json is valid against the PGXN meta spec 1.0.0" "$out"
meta_version="$(json_field "$REPO_ROOT/META.json" version)"
check "META.json version is the control file's default_version" "$meta_version" "$DEFAULT_VERSION"
check "META.json version is the Makefile's EXTVERSION" "$meta_version" "$EXTVERSION"
check "META.json provides agent_tasks at that version" \
    "$(json_field "$REPO_ROOT/META.json" provides agent_tasks version)" "$EXTVERSION"
check "META.json names the install script the Makefile builds" \
    "$(json_field "$REPO_ROOT/META.json" provides agent_tasks file)" "agent_tasks--$EXTVERSION.sql"
docfile="$(json_field "$REPO_ROOT/META.json" provides agent_tasks docfile)"
[[ -n "$docfile" && -f "$REPO_ROOT/$docfile" ]] && ok "META.json's docfile exists" \
    || nok "META.json's docfile exists" "docfile: '$docfile'"

# The validator itself: each broken copy of META.json must be refused.
rejects() { # name perl-statement-on-$m
    local f="$TMP/broken.json" out
    perl -MJSON::PP -e 'my $j = JSON::PP->new; my $m = $j->decode(do { local $/; open my $f, "<", $ARGV[0] or die; <$f> });
                         eval $ARGV[1]; die $@ if $@; print $j->encode($m)' "$REPO_ROOT/META.json" "$2" >"$f"
    if out="$(perl "$HERE/pgxn_meta.pl" "$f" 2>&1)"; then
        nok "the validator refuses $1" "accepted: $2"
    else
        ok "the validator refuses $1"
    fi
}
rejects "a missing license"          'delete $m->{license}'
rejects "a license string not in the spec" '$m->{license} = "postgres"'
rejects "a version that is not semver" '$m->{version} = "0.2"'
rejects "an extension without a file" 'delete $m->{provides}{agent_tasks}{file}'
rejects "an unknown prereqs phase"   '$m->{prereqs}{install} = {requires => {PostgreSQL => "15.0.0"}}'
rejects "an unknown relationship"    '$m->{prereqs}{runtime}{needs} = {PostgreSQL => "15.0.0"}'
rejects "a malformed version range"  '$m->{prereqs}{runtime}{requires}{PostgreSQL} = ">= fifteen"'
rejects "another meta-spec version"  '$m->{"meta-spec"}{version} = "2.0.0"'
rejects "an unknown key without x_"  '$m->{homepage} = "https://example.com/"'

# --- build the package from a copy of the tree ---------------------------------
# dpkg-buildpackage writes the .deb next to the source directory: both in TMP.
SRC="$TMP/src"
mkdir -p "$SRC"
tar -C "$REPO_ROOT" --exclude=.git --exclude=node_modules --exclude=tmp_check --exclude=results \
    --exclude='*.o' --exclude='*.bc' --exclude='*.so' -cf - . | tar -C "$SRC" -xf -
DEB="$TMP/${PKG}_$(cd "$SRC" && dpkg-parsechangelog -S Version)_$(dpkg --print-architecture).deb"
if (cd "$SRC" && timeout -k 10 600 dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1 && [[ -f "$DEB" ]]; then
    ok "dpkg-buildpackage builds $(basename "$DEB")"
else
    nok "dpkg-buildpackage builds $(basename "$DEB")" "$(log_tail "$TMP/build.log")"
    summary; exit 1
fi

field() { dpkg-deb -f "$DEB" "$1"; }
check "package name" "$(field Package)" "$PKG"
check "package version is the extension's, Debian revision 1" "$(field Version)" "$EXTVERSION-1"
depends="$(field Depends)"
[[ "$depends" =~ (^|, )postgresql-15( |,|$) ]] && ok "it depends on postgresql-15" \
    || nok "it depends on postgresql-15" "Depends: $depends"
[[ "$depends" =~ (^|, )libcurl4( |,|$) ]] && ok "it depends on libcurl4 (shlibs)" \
    || nok "it depends on libcurl4 (shlibs)" "Depends: $depends"

dpkg-deb -c "$DEB" | awk '{ sub(/^\./, "", $6); print $6 }' >"$TMP/contents"
has() { # path
    grep -qxF "$1" "$TMP/contents" && ok "the package has $1" || nok "the package has $1"
}
has "$PKGLIBDIR/agent_tasks.so"
has "$EXTDIR/agent_tasks.control"
has "/usr/share/doc/$PKG/copyright"
# Every install and upgrade script the Makefile installs, the released
# 0.1.0 script and the 0.1.0 -> 0.2.0 upgrade among them.
mapfile -t scripts < <({
    echo "agent_tasks--$EXTVERSION.sql"
    echo agent_tasks--0.1.0.sql
    echo agent_tasks--0.1.0--0.2.0.sql
    for f in "$REPO_ROOT"/src/sql/released/agent_tasks--*.sql "$REPO_ROOT"/src/sql/upgrades/agent_tasks--*--*.sql; do
        [[ -e "$f" ]] && basename "$f"
    done
} | LC_ALL=C sort -u)
for s in "${scripts[@]}"; do has "$EXTDIR/$s"; done
mkdir -p "$TMP/deb"
dpkg-deb -x "$DEB" "$TMP/deb"
check "its agent_tasks.control's default_version" \
    "$(sed -nE "s/^default_version[[:space:]]*=[[:space:]]*'([^']*)'.*/\1/p" "$TMP/deb$EXTDIR/agent_tasks.control")" "$EXTVERSION"

# --- install it, and leave the machine as it was afterwards ---------------------
RESTORED=0
restore() {
    RESTORED=1
    if dpkg-query -W -f='${db:Status-Status}\n' "$PKG" 2>/dev/null | grep -qvx not-installed; then
        as_root dpkg --purge "$PKG" || return 1
    fi
    as_root make -C "$REPO_ROOT" install PG_CONFIG="$PG_CONFIG"
}
on_exit '[[ "$RESTORED" == 1 ]] || restore >/dev/null 2>&1'

if as_root dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1; then
    ok "dpkg -i installs it"
else
    nok "dpkg -i installs it" "$(log_tail "$TMP/dpkg.log")"
fi
owner="$(dpkg-query -S "$PKGLIBDIR/agent_tasks.so" 2>/dev/null | cut -d: -f1 || true)"
check "$PKGLIBDIR/agent_tasks.so belongs to the package" "$owner" "$PKG"
verify="$(dpkg --verify "$PKG" 2>&1 || true)"
[[ -z "$verify" ]] && ok "the installed files are the package's (dpkg --verify)" \
    || nok "the installed files are the package's (dpkg --verify)" "$verify"

# --- the regression suite against the installed package ------------------------
# A cluster of its own, started now, so that it loads the package's .so.
cluster_start 2>"$TMP/cluster.log" || { nok "a cluster starts" "$(log_tail "$TMP/cluster.log")"; summary; exit 1; }
pid="$(head -n1 "$CLUSTER_DATA/postmaster.pid")"
mapped="$(awk '$6 ~ /\/agent_tasks\.so$/ { print $5 }' "/proc/$pid/maps" | sort -u)"
check "the postmaster runs the package's agent_tasks.so (inode)" "$mapped" "$(stat -c %i "$PKGLIBDIR/agent_tasks.so")"

mapfile -t tests < <(for f in "$CLUSTER_WORK"/sql/*.sql; do basename "$f" .sql; done | LC_ALL=C sort)
as_pg mkdir -p "$CLUSTER_DIR/out"
rc=0
(cd "$CLUSTER_WORK" && as_pg timeout -k 10 "${AT_TIMEOUT_REGRESS:-600}" "$PG_REGRESS_BIN" \
    --bindir="$PG_BINDIR" --host=127.0.0.1 --port="$PGPORT" --user=postgres \
    --inputdir="$CLUSTER_WORK" --outputdir="$CLUSTER_DIR/out" --load-extension=agent_tasks \
    --dbname=contrib_regression "${tests[@]}") >"$TMP/regress.log" 2>&1 || rc=$?
# One check per test, as pg_regress reports them ("test NAME ... ok|FAILED").
ran=0
while IFS= read -r line; do
    ran=$((ran + 1))
    name="$(awk '{ print $2 }' <<<"$line")"
    if [[ "$line" =~ \.\.\.\ +ok ]]; then ok "regression $name on the package"
    else nok "regression $name on the package" "$(grep -A40 "/$name.out" "$CLUSTER_DIR/out/regression.diffs" 2>/dev/null | head -n 40)"
    fi
done < <(grep -E '^test .*\.\.\. +(ok|FAILED|failed)' "$TMP/regress.log" || true)
# A runner that stopped early (crash, timeout) reports fewer tests.
((ran == ${#tests[@]})) && ok "pg_regress ran all ${#tests[@]} tests on the package" \
    || nok "pg_regress ran all ${#tests[@]} tests on the package" "it reported $ran (status $rc)" "$(log_tail "$TMP/regress.log" 15)"
cluster_stop

# --- purge, then put back what make install wrote -------------------------------
if restore >"$TMP/restore.log" 2>&1; then
    ok "the package is purged and make install puts agent_tasks back"
else
    nok "the package is purged and make install puts agent_tasks back" "$(log_tail "$TMP/restore.log")"
fi
check "the package is gone" "$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || echo not-installed)" not-installed
[[ -f "$PKGLIBDIR/agent_tasks.so" && -f "$EXTDIR/agent_tasks.control" && -z "$(dpkg-query -S "$PKGLIBDIR/agent_tasks.so" 2>/dev/null || true)" ]] \
    && ok "agent_tasks is installed again, by make install" \
    || nok "agent_tasks is installed again, by make install"

summary
((FAIL == 0))
