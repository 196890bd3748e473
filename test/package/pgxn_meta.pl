#!/usr/bin/perl
# Validate a META.json against the PGXN Meta Spec 1.0.x (RFC 1 of PGXN), the
# rules a release upload is held to: required keys, key names, semantic
# versions, license strings, provides, prereqs phases and relationships,
# version ranges, resources, tags.  No validator of PGXN's own is packaged
# for Debian or npm, so this one follows the spec's text.
#
#   pgxn_meta.pl META.json   prints "valid" and exits 0, or one line per
#                            error and exits 1
use strict;
use warnings;
use B ();
use JSON::PP ();

my $file = shift // 'META.json';
my @errors;
sub error { push @errors, join('', @_) }

open my $fh, '<:raw', $file or die "cannot open $file: $!\n";
my $meta = eval { JSON::PP->new->utf8->decode(do { local $/; <$fh> }) };
if (!defined $meta) { print "not JSON: $@"; exit 1 }

# SemVer 2.0.0: MAJOR.MINOR.PATCH, no leading zeros, optional pre-release
# and build parts.
my $num = qr/(?:0|[1-9][0-9]*)/;
my $pre_id = qr/(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)/;
my $semver = qr/$num\.$num\.$num(?:-$pre_id(?:\.$pre_id)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?/;

my %license_strings = map { $_ => 1 } qw(
    agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd freebsd gfdl_1_2
    gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1
    openssl perl_5 postgresql qpl_1_0 ssleay sun zlib
    open_source restricted unrestricted unknown);
my %phases = map { $_ => 1 } qw(configure build test runtime develop);
my %relationships = map { $_ => 1 } qw(requires recommends suggests conflicts);

sub custom { $_[0] =~ /^x_/i }

# JSON strings, not numbers that look like strings after use.
sub is_string {
    my ($v) = @_;
    return defined $v && !ref $v && (B::svref_2object(\$v)->FLAGS & B::SVp_POK) && length $v > 0;
}
sub is_map  { ref $_[0] eq 'HASH' }
sub is_list { ref $_[0] eq 'ARRAY' }
# The spec: a consumer expecting a List takes a String as a List of one.
sub as_list { is_list($_[0]) ? @{ $_[0] } : ($_[0]) }

sub check_string { my ($v, $where) = @_; is_string($v) or error("$where: must be a non-empty string") }
sub check_version {
    my ($v, $where) = @_;
    is_string($v) && $v =~ /\A$semver\z/ or error("$where: '", $v // 'null', "' is not a semantic version (MAJOR.MINOR.PATCH)");
}
sub check_term {
    my ($v, $where) = @_;
    is_string($v) && length $v >= 2 && $v !~ m{[/\\\s[:cntrl:]]}
        or error("$where: '", $v // 'null', "' is not a term (2+ characters, no slash, backslash, space or control character)");
}
sub check_uri {
    my ($v, $where) = @_;
    is_string($v) && $v =~ /\A[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\z/ or error("$where: '", $v // 'null', "' is not a URI");
}
sub check_path {
    my ($v, $where) = @_;
    is_string($v) && $v !~ m{\A/} && $v !~ /\\/ or error("$where: '", $v // 'null', "' is not a relative unix path");
}
sub check_keys { # map, where, allowed keys...
    my ($map, $where, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;
    for (sort keys %$map) { $ok{$_} || custom($_) or error("$where: unknown key '$_' (custom keys start with x_)") }
}
sub check_required {
    my ($map, $where, @required) = @_;
    for (@required) { exists $map->{$_} or error("$where: missing required key '$_'") }
}

# A version range: 0, or comma-separated [op] semver clauses.
sub check_range {
    my ($v, $where) = @_;
    return if defined $v && !ref $v && !(B::svref_2object(\$v)->FLAGS & B::SVp_POK) && $v == 0;
    my $clause = qr/(?:(?:[=!]=|[<>]=?)\s*)?$semver/;
    is_string($v) && ($v eq '0' || $v =~ /\A$clause(?:\s*,\s*$clause)*\z/)
        or error("$where: '", $v // 'null', "' is not a version range (0, or e.g. '>= 1.2.0, < 2.0.0')");
}

if (!is_map($meta)) { print "the top level is not a JSON object\n"; exit 1 }

my @required = qw(name version abstract maintainer license provides meta-spec);
check_required($meta, 'META', @required);
check_keys($meta, 'META', @required,
    qw(description generated_by tags no_index prereqs release_status resources));

# meta-spec first: a consumer must not read on when it does not know the version.
my $spec = $meta->{'meta-spec'};
if (is_map($spec)) {
    check_required($spec, 'meta-spec', 'version');
    check_keys($spec, 'meta-spec', qw(version url));
    is_string($spec->{version}) && $spec->{version} =~ /\A1\.0\.[0-9]+\z/
        or error("meta-spec.version: '", $spec->{version} // 'null', "' is not 1.0.x, the version this validator knows");
    check_uri($spec->{url}, 'meta-spec.url') if exists $spec->{url};
} elsif (exists $meta->{'meta-spec'}) {
    error('meta-spec: must be an object');
}

check_term($meta->{name}, 'name') if exists $meta->{name};
check_version($meta->{version}, 'version') if exists $meta->{version};
for my $k (qw(abstract description generated_by)) {
    check_string($meta->{$k}, $k) if exists $meta->{$k};
}

if (exists $meta->{maintainer}) {
    my @m = as_list($meta->{maintainer});
    @m or error('maintainer: must name at least one person');
    check_string($m[$_], "maintainer[$_]") for 0 .. $#m;
}

if (exists $meta->{license}) {
    my $l = $meta->{license};
    if (is_map($l)) {
        %$l or error('license: must name at least one license');
        check_uri($l->{$_}, "license.$_") for sort keys %$l;
    } else {
        my @l = as_list($l);
        @l or error('license: must name at least one license');
        for (@l) {
            is_string($_) && $license_strings{$_} or error("license: '", $_ // 'null', "' is not a license string of the spec");
        }
    }
}

if (exists $meta->{provides}) {
    my $p = $meta->{provides};
    if (!is_map($p) || !%$p) {
        error('provides: must be an object naming at least one extension');
    } else {
        for my $ext (sort keys %$p) {
            my $where = "provides.$ext";
            check_term($ext, "$where (the name)");
            my $e = $p->{$ext};
            if (!is_map($e)) { error("$where: must be an object"); next }
            check_required($e, $where, qw(file version));
            check_keys($e, $where, qw(file version abstract docfile));
            check_path($e->{file}, "$where.file") if exists $e->{file};
            check_version($e->{version}, "$where.version") if exists $e->{version};
            check_string($e->{abstract}, "$where.abstract") if exists $e->{abstract};
            check_path($e->{docfile}, "$where.docfile") if exists $e->{docfile};
        }
    }
}

if (exists $meta->{prereqs}) {
    my $p = $meta->{prereqs};
    if (!is_map($p)) {
        error('prereqs: must be an object');
    } else {
        for my $phase (sort keys %$p) {
            next if custom($phase);
            $phases{$phase} or do { error("prereqs: unknown phase '$phase' (", join(', ', sort keys %phases), ')'); next };
            my $rels = $p->{$phase};
            if (!is_map($rels) || !%$rels) { error("prereqs.$phase: must be an object with at least one relationship"); next }
            for my $rel (sort keys %$rels) {
                next if custom($rel);
                $relationships{$rel} or do { error("prereqs.$phase: unknown relationship '$rel' (", join(', ', sort keys %relationships), ')'); next };
                my $deps = $rels->{$rel};
                if (!is_map($deps)) { error("prereqs.$phase.$rel: must be an object of extension => version range"); next }
                for my $dep (sort keys %$deps) {
                    check_term($dep, "prereqs.$phase.$rel (the name '$dep')");
                    check_range($deps->{$dep}, "prereqs.$phase.$rel.$dep");
                }
            }
        }
    }
}

if (exists $meta->{release_status}) {
    my $s = $meta->{release_status};
    is_string($s) && $s =~ /\A(?:stable|testing|unstable)\z/
        or error("release_status: '", $s // 'null', "' is not stable, testing or unstable");
}

if (exists $meta->{tags}) {
    my @t = as_list($meta->{tags});
    for (0 .. $#t) {
        is_string($t[$_]) && length $t[$_] < 256 && $t[$_] !~ m{[/\\[:cntrl:]]}
            or error("tags[$_]: '", $t[$_] // 'null', "' is not a tag (under 256 characters, no slash, backslash or control character)");
    }
}

if (exists $meta->{no_index}) {
    my $n = $meta->{no_index};
    if (!is_map($n)) {
        error('no_index: must be an object');
    } else {
        check_keys($n, 'no_index', qw(file directory));
        for my $k (grep { exists $n->{$_} } qw(file directory)) {
            my @paths = as_list($n->{$k});
            check_path($paths[$_], "no_index.$k\[$_]") for 0 .. $#paths;
        }
    }
}

if (exists $meta->{resources}) {
    my $r = $meta->{resources};
    if (!is_map($r)) {
        error('resources: must be an object');
    } else {
        check_keys($r, 'resources', qw(homepage bugtracker repository));
        check_uri($r->{homepage}, 'resources.homepage') if exists $r->{homepage};
        if (exists $r->{bugtracker}) {
            my $b = $r->{bugtracker};
            if (!is_map($b)) {
                error('resources.bugtracker: must be an object');
            } else {
                check_keys($b, 'resources.bugtracker', qw(web mailto));
                check_uri($b->{web}, 'resources.bugtracker.web') if exists $b->{web};
                !exists $b->{mailto} || (is_string($b->{mailto}) && $b->{mailto} =~ /\A[^@\s]+@[^@\s]+\z/)
                    or error("resources.bugtracker.mailto: '", $b->{mailto} // 'null', "' is not an e-mail address");
            }
        }
        if (exists $r->{repository}) {
            my $repo = $r->{repository};
            if (!is_map($repo)) {
                error('resources.repository: must be an object');
            } else {
                check_keys($repo, 'resources.repository', qw(url web type));
                check_uri($repo->{$_}, "resources.repository.$_") for grep { exists $repo->{$_} } qw(url web);
                !exists $repo->{type} || (is_string($repo->{type}) && $repo->{type} !~ /[A-Z]/)
                    or error('resources.repository.type: must be a lowercase string');
            }
        }
    }
}

if (@errors) { print "$_\n" for @errors; exit 1 }
print "valid\n";
exit 0;
