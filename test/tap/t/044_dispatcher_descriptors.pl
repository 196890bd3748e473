# The HTTP dispatcher and its open-file limit (issue 10): 1,000 requests in
# flight against a slow local receiver, every attempt succeeds.
#
#  1. Soft limit 1024, hard limit higher (the usual systemd setting): the
#     dispatcher raises its soft limit to the hard one and really holds
#     1,000 requests at once.
#  2. Soft = hard = 1024: it cannot raise it, so it caps the requests in
#     flight by what the descriptors hold (logged once at LOG) and works
#     through the 1,000 runs that many at a time; none fails.
#
# The limits are set with prlimit(1) around pg_ctl (a wrapper first in
# PATH), so only the server gets them.  The receiver is a few lines of
# node (no npm packages): it answers every POST after a delay and counts
# how many requests it holds at once.  Skipped without node, prlimit, or a
# hard limit of at least 4096 for this test (the receiver holds 1,000
# connections itself).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use IPC::Run qw(start);
use Time::HiRes qw(usleep);
use AgentTasksTest;

plan skip_all => 'node is not installed' if system('node --version >/dev/null 2>&1') != 0;
plan skip_all => 'prlimit is not installed' if system('prlimit --version >/dev/null 2>&1') != 0;
my $hard = `sh -c 'ulimit -Hn'`;
chomp $hard;
plan skip_all => "the hard open-file limit ($hard) is below 4096"
  if $hard ne 'unlimited' && $hard < 4096;

my $N = 1000;
my $DELAY_MS = 2500;

# --- the receiver ------------------------------------------------------------
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $receiver_js = "$tmp/receiver.js";
open(my $fh, '>', $receiver_js) or die "$receiver_js: $!";
print $fh <<'EOJS';
'use strict';
const http = require('http');
const delay = Number(process.argv[2]);
let current = 0, max = 0, count = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    current++; count++;
    if (current > max) max = current;
    setTimeout(() => {
      current--;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok": true}');
    }, delay);
  });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 120000;
server.requestTimeout = 0;
server.maxConnections = 100000;
const control = http.createServer((req, res) => {
  if (req.url === '/reset') { max = current; count = 0; }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ current, max, count }));
});
server.listen(0, '127.0.0.1', () => {
  control.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ port: server.address().port, control_port: control.address().port }));
  });
});
EOJS
close $fh;

my ($rin, $rout, $rerr) = ('', '', '');
my $receiver;
END { local $?; $receiver->kill_kill if $receiver; }
$receiver = start([ 'node', $receiver_js, $DELAY_MS ], \$rin, \$rout, \$rerr);
my $deadline = time + 20;
$receiver->pump_nb while $rout !~ /\n/ && time < $deadline && usleep(50_000) >= 0;
my $ports = decode_json((split /\n/, $rout)[0]);
my ($port, $cport) = ($ports->{port}, $ports->{control_port});
ok($port && $cport, "receiver on 127.0.0.1:$port");

my $http = HTTP::Tiny->new(timeout => 10);
sub stats
{
	my ($path) = @_;
	my $res = $http->get("http://127.0.0.1:$cport" . ($path // '/stats'));
	die "receiver control: $res->{status}\n" unless $res->{success};
	return decode_json($res->{content});
}

# --- pg_ctl under prlimit ----------------------------------------------------
my $real_pg_ctl = `which pg_ctl`;
chomp $real_pg_ctl;
my $wrap = "$tmp/bin";
mkdir $wrap or die "$wrap: $!";
open($fh, '>', "$wrap/pg_ctl") or die "$wrap/pg_ctl: $!";
print $fh "#!/bin/sh\nexec prlimit --nofile=\"\$AT_NOFILE\" '$real_pg_ctl' \"\$@\"\n";
close $fh;
chmod 0755, "$wrap/pg_ctl";

sub start_node
{
	my ($name, $nofile) = @_;
	my $node = AgentTasksTest::new_node($name);
	$node->append_conf('postgresql.conf', <<"EOC");
agent_tasks.http_max_in_flight = $N
agent_tasks.allow_insecure_loopback = on
agent_tasks.task_rate_limit = 0
log_min_messages = log
EOC
	local $ENV{PATH} = "$wrap:$ENV{PATH}";
	local $ENV{AT_NOFILE} = $nofile;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION agent_tasks');
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM agent_tasks.worker_status() WHERE worker LIKE 'dispatcher%'"),
		"$name: the dispatcher runs");
	return $node;
}

sub dispatcher_limits
{
	my ($node) = @_;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM agent_tasks.worker_status() WHERE worker LIKE 'dispatcher%'");
	open(my $lf, '<', "/proc/$pid/limits") or return ('?', '?');
	while (<$lf>)
	{
		return ($1, $2) if /^Max open files\s+(\S+)\s+(\S+)/;
	}
	return ('?', '?');
}

# Queue $N runs of an http agent that allows one attempt each: a request
# that failed for want of a descriptor would fail its run.
sub run_all
{
	my ($node, $name) = @_;
	stats('/reset');
	$node->safe_psql('postgres', qq{
		SET agent_tasks.account = 'fd';
		SELECT agent_tasks.create_agent('slow', 'http', 'http://127.0.0.1:$port/run',
			concurrency => 10000, max_attempts => 1, timeout => '10 minutes');
		SELECT count(agent_tasks.create_task('request ' || i, agent => 'slow', auto_process => true))
		  FROM generate_series(1, $N) i;
	});
	my $done = $node->poll_query_until('postgres', qq{
		SELECT count(*) = $N FROM agent_tasks_internal.runs
		 WHERE account = 'fd' AND status IN ('completed', 'failed', 'cancelled')});
	ok($done, "$name: all $N runs ended");
	is($node->safe_psql('postgres', qq{
			SELECT count(*) FROM agent_tasks_internal.runs
			 WHERE account = 'fd' AND status = 'completed' AND attempt = 1}),
		$N, "$name: every attempt succeeded (completed at the first attempt)");
	is($node->safe_psql('postgres', qq{
			SELECT string_agg(DISTINCT error::text, '; ') FROM agent_tasks_internal.runs
			 WHERE account = 'fd' AND status <> 'completed'}),
		'', "$name: no run failed");
	my $s = stats();
	is($s->{count}, $N, "$name: the receiver answered $N requests");
	return $s->{max};
}

# --- 1. soft limit 1024, hard limit higher -----------------------------------
{
	my $node = start_node('fd_soft', '1024:');
	my ($soft, $hard_seen) = dispatcher_limits($node);
	isnt($soft, '1024', "fd_soft: the dispatcher raised its soft limit (now $soft, hard $hard_seen)");
	is($soft, $hard_seen, 'fd_soft: to the hard limit');
	my $max = run_all($node, 'fd_soft');
	cmp_ok($max, '>=', 0.9 * $N, "fd_soft: requests really in flight at once ($max)");
	my $log = slurp_file($node->logfile);
	unlike($log, qr/Too many open files|Couldn't connect|could not make its wait set/,
		'fd_soft: no descriptor shortage in the log');
	unlike($log, qr/keeps at most \d+ requests in flight/, 'fd_soft: not capped');
	$node->stop;
}

# --- 2. soft = hard = 1024 ----------------------------------------------------
{
	my $node = start_node('fd_hard', '1024:1024');
	my ($soft, $hard_seen) = dispatcher_limits($node);
	is("$soft/$hard_seen", '1024/1024', 'fd_hard: the limit cannot be raised');
	my $log = slurp_file($node->logfile);
	my @capped = $log =~ /(keeps at most (\d+) requests in flight, not agent_tasks.http_max_in_flight = $N)/g;
	is(scalar(@capped) / 2, 1, 'fd_hard: the cap is logged once');
	my $cap = $capped[1] // 0;
	cmp_ok($cap, '>', 100, "fd_hard: a useful cap ($cap)");
	cmp_ok($cap, '<', $N, 'fd_hard: below the setting');
	my $max = run_all($node, 'fd_hard');
	cmp_ok($max, '<=', $cap, "fd_hard: never more than the cap in flight ($max)");
	$log = slurp_file($node->logfile);
	unlike($log, qr/Too many open files|Couldn't connect|could not make its wait set/,
		'fd_hard: no descriptor shortage in the log');
	is($node->safe_psql('postgres', 'SELECT 1'), '1', 'fd_hard: the server is fine');
	$node->stop;
}

done_testing();
