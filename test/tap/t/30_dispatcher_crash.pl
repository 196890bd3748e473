# Webhooks survive a dispatcher crash: with requests in flight to a slow
# receiver, the dispatcher is killed with SIGKILL (the postmaster resets
# every backend) and then the server is restarted.  Afterwards nothing is
# lost (every delivery ends up delivered, each with one webhook-id however
# often it was sent) and nothing is marked delivered that the receiver did
# not answer with a 2xx it managed to write out.
#
# The receiver is test/webhooks/receiver.js (it verifies every signature
# with the npm standardwebhooks library; npm ci is run when node_modules is
# missing).  Skipped without node or without the HTTP dispatcher.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use JSON::PP;
use HTTP::Tiny;
use IPC::Run qw(start);
use Time::HiRes qw(usleep);
use AgentTasksTest;

my $hooks_dir = abs_path(dirname(__FILE__) . '/../../webhooks');
plan skip_all => 'node is not installed' if system('node --version >/dev/null 2>&1') != 0;
plan skip_all => "no receiver in $hooks_dir" unless -f "$hooks_dir/receiver.js";
if (!-d "$hooks_dir/node_modules/standardwebhooks")
{
	system("cd '$hooks_dir' && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1") == 0
	  or plan skip_all => 'npm ci failed in test/webhooks';
}

my $node = AgentTasksTest::new_node('dispatcher_crash');
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION agent_tasks');

my $has_dispatcher = $node->safe_psql('postgres',
	"SELECT to_regprocedure('agent_tasks_internal.claim_http_runs(text,integer)') IS NOT NULL");
if ($has_dispatcher ne 't')
{
	$node->stop;
	plan skip_all => 'the server has no HTTP dispatcher';
}
# plain http to 127.0.0.1, and callback retries not needed here
$node->safe_psql('postgres', 'ALTER SYSTEM SET agent_tasks.allow_insecure_loopback = on');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

sub dispatcher_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM agent_tasks.worker_status() WHERE worker ILIKE '%dispatcher%' LIMIT 1");
}
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM agent_tasks.worker_status() WHERE worker ILIKE '%dispatcher%'"),
	'the dispatcher runs');

# --- the receiver ---------------------------------------------------------
my ($rin, $rout, $rerr) = ('', '', '');
my $receiver;
# A test that dies must not leave the receiver running (END blocks still run).
END { $receiver->kill_kill if $receiver; }
$receiver = start([ 'node', "$hooks_dir/receiver.js" ], \$rin, \$rout, \$rerr);
my $deadline = time + 20;
$receiver->pump_nb while $rout !~ /\n/ && time < $deadline && usleep(50_000) >= 0;
my $ports = decode_json((split /\n/, $rout)[0]);
my ($port, $cport) = ($ports->{port}, $ports->{control_port});
ok($port && $cport, "receiver on 127.0.0.1:$port");

my $http = HTTP::Tiny->new(timeout => 10);
sub control
{
	my ($method, $path, $body) = @_;
	my $res = $http->request($method, "http://127.0.0.1:$cport$path",
		defined $body
		? { headers => { 'content-type' => 'application/json' }, content => $body }
		: {});
	die "receiver control $method $path: $res->{status} $res->{content}\n" unless $res->{success};
	return $res->{content};
}
sub received { return decode_json(control('GET', '/deliveries?path=/crash')); }

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
# slow answers: requests stay in flight while the dispatcher is killed
control('POST', '/config', encode_json({ path => '/crash', secrets => [$secret],
	default => { status => 200, delay_ms => 4000 } }));

$node->safe_psql('postgres', qq{
	SET agent_tasks.account = 'crash';
	SELECT agent_tasks.create_webhook('http://127.0.0.1:$port/crash', '{task.created}', '$secret',
		retry_schedule => '{0.5 s, 0.5 s, 0.5 s, 0.5 s, 1 s, 1 s, 1 s, 1 s, 2 s, 2 s, 2 s, 2 s}', timeout => '10 s');
	SELECT agent_tasks.create_task('crash ' || i) FROM generate_series(1, 20) i;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM agent_tasks_internal.webhook_deliveries'),
	'20', 'twenty deliveries in the outbox');

# wait until requests are in flight (arrived at the receiver, not answered yet)
$deadline = time + 30;
while (time < $deadline && scalar(@{ received() }) < 5) { usleep(100_000); }
cmp_ok(scalar(@{ received() }), '>=', 5, 'requests arrived at the slow receiver');
my $in_flight = $node->safe_psql('postgres',
	"SELECT count(*) FROM agent_tasks_internal.webhook_attempts WHERE status = 'in_flight'");
cmp_ok($in_flight, '>', 0, "attempts in flight when the dispatcher is killed ($in_flight)");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM agent_tasks_internal.webhook_deliveries WHERE status = 'delivered'"),
	'0', 'nothing delivered yet');

# --- kill -9 the dispatcher mid-delivery, then restart the server ---------
my $pid = dispatcher_pid();
ok($pid, "dispatcher pid $pid");
kill 'KILL', $pid;
# the postmaster resets all backends after a crashed child; wait for it
$deadline = time + 60;
while (time < $deadline)
{
	my ($ret) = $node->psql('postgres', 'SELECT 1');
	last if $ret == 0;
	usleep(200_000);
}
$node->restart;
pass('server restarted after the crash');

# the receiver answers at once from now on
control('POST', '/config', encode_json({ path => '/crash', secrets => [$secret],
	default => { status => 200 } }));

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 20 FROM agent_tasks_internal.webhook_deliveries WHERE status = 'delivered'"),
	'nothing lost: all twenty delivered after the restart');

my $got = received();
my %completed_2xx;
my %ids;
for my $r (@$got)
{
	$ids{ $r->{webhook_id} } = 1;
	$completed_2xx{ $r->{webhook_id} } = 1
	  if $r->{completed} && $r->{status} >= 200 && $r->{status} < 300;
}
is(scalar(grep { !$_->{verified} } @$got), 0, 'every request carried a valid signature');

my @delivered = split /\n/, $node->safe_psql('postgres',
	"SELECT 'msg_' || id FROM agent_tasks_internal.webhook_deliveries WHERE status = 'delivered' ORDER BY id");
my @unseen = grep { !$completed_2xx{$_} } @delivered;
is(scalar(@unseen), 0, 'no delivery marked delivered that the receiver did not answer with a 2xx')
  or diag("delivered without a 2xx at the receiver: @unseen");
is(scalar(keys %ids), 20, 'twenty distinct webhook-ids, however often each was sent');

is($node->safe_psql('postgres',
		"SELECT count(*) FROM agent_tasks_internal.webhook_attempts WHERE status = 'in_flight'"),
	'0', 'no attempt left in flight');
cmp_ok($node->safe_psql('postgres',
		"SELECT count(*) FROM agent_tasks_internal.webhook_attempts WHERE status IN ('lost', 'failed')"),
	'>', 0, 'the attempts cut short by the crash are recorded as lost or failed');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM agent_tasks_internal.webhook_deliveries d
		 WHERE d.status = 'delivered'
		   AND NOT EXISTS (SELECT 1 FROM agent_tasks_internal.webhook_attempts a
						    WHERE a.delivery_id = d.id AND a.status = 'succeeded')}),
	'0', 'each delivered delivery has a succeeded attempt');
# a succeeded attempt is one whose 2xx the dispatcher read: the receiver wrote it out
my $sent_after = $node->safe_psql('postgres', q{
	SELECT count(*) FROM agent_tasks_internal.webhook_attempts WHERE status = 'succeeded'});
cmp_ok(scalar(grep { $_->{completed} && $_->{status} == 200 } @$got), '>=', $sent_after,
	'the receiver wrote out at least as many 2xx answers as attempts succeeded');

$node->stop;
done_testing();
