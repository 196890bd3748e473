# wait_task() callers beyond the 128 shared-memory slots are woken by the
# commit that changes their task (through a condition variable), like the
# others, instead of polling: 140 sessions wait on 140 tasks; one commit
# cancels them all and every session returns the cancelled task.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $waiters = 140;
my $node = AgentTasksTest::new_node('overflow');
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('outside', 'external');
});
my @ids = split /\n/, $node->safe_psql('postgres', qq{
SET agent_tasks.account = 'tap';
SELECT (agent_tasks.create_task('waited on ' || i, agent => 'outside', auto_process => true)).id
  FROM generate_series(1, $waiters) i ORDER BY 1;
});
is(scalar @ids, $waiters, "$waiters queued tasks");

my (@handles, @out);
{
	local $ENV{PGOPTIONS} = '-c agent_tasks.account=tap';
	for my $i (0 .. $#ids)
	{
		$out[$i] = '';
		push @handles, IPC::Run::start(
			[ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'),
			  '-c', "SELECT status FROM agent_tasks.wait_task('$ids[$i]', '90 seconds')" ],
			'>', \$out[$i], '2>&1');
	}
}
ok($node->poll_query_until('postgres',
	"SELECT count(*) = $waiters FROM pg_stat_activity WHERE query LIKE '%agent_tasks.wait_task(%' AND state = 'active' AND pid <> pg_backend_pid()"),
	"$waiters sessions wait, more than the 128 slots");

# One commit cancels every task.
$node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT count(agent_tasks.cancel_task(id))
  FROM (SELECT id FROM agent_tasks.tasks WHERE title LIKE 'waited on %' ORDER BY id) t;
});
$_->finish for @handles;
is(scalar(grep { $_ eq "cancelled\n" } @out), $waiters,
	'every waiter returned the cancelled task (none waited for its timeout)')
  or diag(join('', grep { $_ ne "cancelled\n" } @out));

$node->stop;
done_testing();
