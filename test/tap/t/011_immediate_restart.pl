# Stop the server in immediate mode while executors are busy, start it
# again, and every task still reaches a terminal state: none is lost, none
# stays queued or in progress.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $tasks = 300;
my $node = AgentTasksTest::new_node('restart');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 2\nagent_tasks.poll_interval = 100\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE FUNCTION public.work(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.01);
	RETURN jsonb_build_object('n', task.metadata -> 'n');
END $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('work', 'sql', 'public.work', max_attempts => 5, backoff_base => '0');
});
$node->safe_psql('postgres', qq{
SET agent_tasks.account = 'tap';
SELECT count(agent_tasks.create_task('task ' || n, agent => 'work', metadata => jsonb_build_object('n', n),
	auto_process => true))
  FROM generate_series(1, $tasks) n;
});

ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 20 FROM agent_tasks_internal.tasks WHERE status = 'completed'"),
	'executors are working through the queue');
$node->stop('immediate');
$node->start;

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM agent_tasks_internal.tasks WHERE agent_tasks.status_kind(status) <> 'terminal'"),
	'every task reached a terminal state after the restart');
is($node->safe_psql('postgres', "SELECT count(*) FROM agent_tasks_internal.tasks"),
	$tasks, 'no task lost');
is($node->safe_psql('postgres', "SELECT count(*) FROM agent_tasks_internal.tasks WHERE status = 'completed'"),
	$tasks, 'every task completed');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM agent_tasks_internal.tasks t
 WHERE t.status <> (SELECT r.status FROM agent_tasks_internal.runs r WHERE r.id = t.latest_run_id)}),
	'0', 'each task has the status of its latest run');

$node->stop;
done_testing();
