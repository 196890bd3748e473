# An agent that always raises is retried with the agent's exponential
# backoff (with jitter: each delay between half and all of the nominal one)
# and then failed with max_attempts; every attempt's error is kept.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('retry');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 50\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE FUNCTION public.broken(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'broken on attempt %', run.attempt;
END $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('broken', 'sql', 'public.broken', max_attempts => 4,
	backoff_base => '200 milliseconds', backoff_max => '500 milliseconds');
});
my $task = $node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('always fails', agent => 'broken', auto_process => true);
});

ok($node->poll_query_until('postgres',
	"SELECT status = 'failed' FROM agent_tasks_internal.tasks WHERE id = '$task'"),
	'task failed in the end');
is($node->safe_psql('postgres', qq{
SELECT status_reason FROM agent_tasks_internal.tasks WHERE id = '$task'}),
	'max_attempts', 'reason max_attempts');
is($node->safe_psql('postgres', qq{
SELECT string_agg(attempt || ':' || status || ':' || status_reason || ':' || (error ->> 'message'), ' ' ORDER BY attempt)
  FROM agent_tasks_internal.runs WHERE task_id = '$task'}),
	'1:failed:error:broken on attempt 1 2:failed:error:broken on attempt 2 '
	. '3:failed:error:broken on attempt 3 4:failed:max_attempts:broken on attempt 4',
	'four attempts, each error kept');

# Delay before attempt n+1: min(backoff_max, base * 2^(n-1)), times 0.5..1.
# The retry is queued in the transaction that fails attempt n, with due_at =
# now() + delay and queued_at = now(): both from that transaction's start,
# so their difference is the delay whatever the load (ended_at is the wall
# clock, later by however long the transaction took).  1 µs: rounding.
is($node->safe_psql('postgres', qq{
SELECT string_agg(ok::text, ' ' ORDER BY attempt)
  FROM (SELECT r.attempt,
			   next.queued_at <= r.ended_at
			   AND extract(epoch FROM next.due_at - next.queued_at) BETWEEN
				   0.5 * least(0.5, 0.2 * power(2, r.attempt - 1)) - 0.000001
				   AND least(0.5, 0.2 * power(2, r.attempt - 1)) + 0.000001 AS ok
		  FROM agent_tasks_internal.runs r
		  JOIN agent_tasks_internal.runs next ON next.task_id = r.task_id AND next.attempt = r.attempt + 1
		 WHERE r.task_id = '$task') s}),
	'true true true', 'each retry was scheduled with exponential backoff and jitter');
ok($node->safe_psql('postgres', qq{
SELECT bool_and(r.started_at >= r.due_at)
  FROM agent_tasks_internal.runs r WHERE r.task_id = '$task'}) eq 't',
	'no attempt started before it was due');

$node->stop;
done_testing();
