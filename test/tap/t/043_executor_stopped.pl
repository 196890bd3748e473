# An executor claims its runs in batches and executes them one after the
# other; the runs waiting for their turn belong to it as long as it lives,
# whatever their lease.  When the executor is stopped (SIGTERM, no crash
# restart), the launcher starts a new one and the runs the old process had
# claimed are recovered at once, not when their leases expire: each task is
# completed by exactly one run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('stopped');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 100\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
-- The first attempt sleeps far longer than the test; later ones finish.
CREATE FUNCTION public.slow_first(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF run.attempt = 1 THEN
		PERFORM pg_sleep(600);
	END IF;
	RETURN jsonb_build_object('attempt', run.attempt);
END $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('slow', 'sql', 'public.slow_first', timeout => '20 minutes', backoff_base => '0');
SELECT count(agent_tasks.create_task('batch ' || i, agent => 'slow', auto_process => true))
  FROM generate_series(1, 3) i;
});

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM agent_tasks_internal.runs WHERE status = 'in_progress' AND worker = 'executor-1'"),
	'the executor has claimed the three runs');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM agent_tasks.worker_status() WHERE worker = 'executor-1' AND state = 'running'"),
	'and is executing the first');
my $pid = $node->safe_psql('postgres', "SELECT pid FROM agent_tasks.worker_status() WHERE worker = 'executor-1'");
ok(kill('TERM', $pid), "stopped executor $pid");

# Their leases run for 20 minutes and more: only the executor's end lets
# them be recovered within the test.
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM agent_tasks_internal.tasks WHERE status = 'completed'"),
	'every task completed');
is($node->safe_psql('postgres', q{
SELECT string_agg(n::text, ' ' ORDER BY n) FROM (
	SELECT count(*) FILTER (WHERE r.status = 'completed') AS n
	  FROM agent_tasks_internal.tasks t JOIN agent_tasks_internal.runs r ON r.task_id = t.id
	 GROUP BY t.id) x}),
	'1 1 1', 'each task completed by exactly one run');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT status || ':' || coalesce(status_reason, ''), ' ')
  FROM agent_tasks_internal.runs WHERE attempt = 1}),
	'failed:worker_lost', 'the stopped executor\'s runs failed as worker_lost');
isnt($node->safe_psql('postgres', "SELECT pid FROM agent_tasks.worker_status() WHERE worker = 'executor-1'"),
	$pid, 'a new executor took over');

$node->stop;
done_testing();
