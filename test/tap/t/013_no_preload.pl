# Without shared_preload_libraries the SQL API works, runs wait for external
# workers, and queuing a run for an in-server agent says how to enable the
# workers in a NOTICE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION agent_tasks');
ok(1, 'CREATE EXTENSION works without preloading');

$node->safe_psql('postgres', q{
CREATE FUNCTION public.noop(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('noop', 'sql', 'public.noop');
SELECT agent_tasks.create_agent('remote', 'external');
});

my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT status FROM agent_tasks.create_task('in-server', agent => 'noop', auto_process => true);
});
is($ret, 0, 'queuing a run for an sql agent succeeds');
is($stdout, 'queued', 'the run stays queued');
like($stderr, qr/NOTICE:  agent_tasks background workers are not running.*shared_preload_libraries/s,
	'a NOTICE says how to enable the workers');

is($node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT status FROM agent_tasks.create_task('remote', agent => 'remote', auto_process => true);
SELECT count(*) FROM agent_tasks.claim_runs('w1', ARRAY['remote']);
}), "queued\n1", 'external workers claim runs');

is($node->safe_psql('postgres', 'SELECT count(*) FROM agent_tasks.worker_status()'),
	'0', 'no workers without preloading');
is($node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT status FROM agent_tasks.wait_task(
	(SELECT id FROM agent_tasks.tasks WHERE title = 'in-server'), '100 milliseconds');
}), 'queued', 'wait_task falls back to polling and times out');

$node->stop;
done_testing();
