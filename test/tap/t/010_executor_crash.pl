# An executor killed with SIGKILL in the middle of a run: the postmaster
# restarts the server, the launcher recovers the run at once (it was started
# in the previous server life), and attempt 2 completes it.  The activity
# trail shows every step.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('crash');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 100\nrestart_after_crash = on\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
-- The first attempt sleeps long enough to be killed; later ones finish.
CREATE FUNCTION public.slow_first(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF run.attempt = 1 THEN
		PERFORM pg_sleep(60);
	END IF;
	RETURN jsonb_build_object('attempt', run.attempt);
END $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('slow', 'sql', 'public.slow_first', timeout => '2 minutes', backoff_base => '0');
});

my $task = $node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('crash me', agent => 'slow', auto_process => true);
});

# Wait until the executor is inside the agent function.
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM agent_tasks.worker_status() WHERE worker = 'executor-1' AND state = 'running'"),
	'executor is running the first attempt');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM agent_tasks.worker_status() WHERE worker = 'executor-1'");
ok(kill('KILL', $pid), "killed executor $pid");

# The postmaster restarts everything; the launcher recovers the run.
ok($node->poll_query_until('postgres',
	"SELECT status = 'completed' FROM agent_tasks_internal.tasks WHERE id = '$task'"),
	'task completed after the crash');

is($node->safe_psql('postgres', qq{
SELECT string_agg(attempt || ':' || status || ':' || coalesce(status_reason, ''), ' ' ORDER BY id)
  FROM agent_tasks_internal.runs WHERE task_id = '$task'}),
	'1:failed:worker_lost 2:completed:', 'attempt 1 lost with its worker, attempt 2 completed');

is($node->safe_psql('postgres', qq{
SELECT output ->> 'attempt' FROM agent_tasks_internal.tasks WHERE id = '$task'}),
	'2', 'output comes from attempt 2');

is($node->safe_psql('postgres', qq{
SELECT string_agg(event || ':' || coalesce(from_status, '') || '>' || coalesce(to_status, '') || ':' || coalesce(reason, ''), ' ' ORDER BY id)
  FROM agent_tasks_internal.activities WHERE task_id = '$task'}),
	'created:>queued:user_request status_changed:queued>in_progress: '
	. 'status_changed:in_progress>queued:retry run_failed:in_progress>failed:worker_lost '
	. 'status_changed:queued>in_progress: status_changed:in_progress>completed:',
	'complete activity trail');

$node->stop;
done_testing();
