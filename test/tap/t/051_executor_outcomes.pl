# What an executor records for each kind of result of an sql agent
# (src/outcomes.c): an output, declared statuses, usage, output schemas,
# children whose ancestors are locked first; and a run cancelled while its
# agent worked must leave none of the agent's changes behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('outcomes');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 100\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE TABLE public.side_effects (title text);
CREATE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.side_effects VALUES (task.title);
	IF task.title = 'slow' THEN
		PERFORM pg_sleep(1);
	END IF;
	RETURN CASE task.title
		WHEN 'null' THEN NULL
		WHEN 'scalar' THEN '"just text"'::jsonb
		WHEN 'declared' THEN '{"status": "completed", "output": {"x": 1}, "usage": {"total_tokens": 5}}'
		WHEN 'clarify' THEN '{"status": "needs_clarification", "question": "Which one?"}'
		WHEN 'refuse' THEN '{"status": "failed", "error": "no"}'
		WHEN 'busy' THEN '{"status": "failed", "error": {"message": "busy"}, "retryable": true, "usage": {"total_tokens": 3}}'
		WHEN 'null status' THEN '{"status": null, "answer": 1}'
		WHEN 'odd status' THEN '{"status": 5}'
		WHEN 'usage' THEN '{"answer": 1, "usage": {"total_tokens": 2}}'
		ELSE '{"answer": 42}' END;
END
$$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('answer', 'sql', 'public.answer', max_attempts => 1);
});

# Create a task, wait until it is no longer queued or in progress, return
# "status reason output-or-error".
sub outcome
{
	my ($title, $extra) = @_;
	$extra //= '';
	my $id = $node->safe_psql('postgres', qq{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('$title', agent => 'answer', auto_process => true $extra)});
	$node->poll_query_until('postgres', qq{
SELECT status NOT IN ('queued', 'in_progress') FROM agent_tasks_internal.tasks WHERE id = '$id'})
	  or die "task $title did not finish";
	return $node->safe_psql('postgres', qq{
SELECT concat_ws(' ', t.status, t.status_reason, coalesce(t.output::text, t.error ->> 'message'), r.tokens)
  FROM agent_tasks_internal.tasks t JOIN agent_tasks_internal.runs r ON r.account = t.account AND r.id = t.latest_run_id
 WHERE t.id = '$id'});
}

is(outcome('plain'), 'completed {"answer": 42} 0', 'an output: completed with it');
is(outcome('null'), 'completed 0', 'no output: completed without one');
is(outcome('scalar'), 'completed "just text" 0', 'a scalar output: completed with it');
is(outcome('declared'), 'completed {"x": 1} 5', 'a declared completion: its output and its usage');
is(outcome('clarify'), 'needs_clarification question 0', 'a question: needs_clarification');
is(outcome('refuse'), 'failed rejected no 0', 'a declared failure: failed, rejected');
is(outcome('busy'), 'failed max_attempts busy 3',
	'a retryable failure on the last attempt: failed, max_attempts, its usage recorded');
is(outcome('null status'), 'completed {"answer": 1, "status": null} 0',
	'a null status: the whole object is the output');
is(outcome('odd status'), "failed invalid_output the agent returned an unknown status '5' 0",
	'a status that is not one: failed, invalid_output');
is(outcome('usage'), 'completed {"usage": {"total_tokens": 2}, "answer": 1} 2',
	'an output with usage: completed with all of it, the usage recorded');
is(outcome('fits', q{, output_schema => '{"type": "object", "required": ["answer"]}'}),
	'completed {"answer": 42} 0', 'an output that matches the schema: completed');
is(outcome('misfits', q{, output_schema => '{"type": "object", "required": ["missing"]}'}),
	"failed invalid_output the output does not match the task's JSON Schema 0",
	'an output that does not match the schema: failed, invalid_output');

# Children of a command-mode parent (their ancestors are locked first).
my $parent = $node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('parent', command => 'answer', items => '["a", "b"]',
	agent => 'answer', auto_process => true)});
ok($node->poll_query_until('postgres', qq{
SELECT status = 'completed' FROM agent_tasks_internal.tasks WHERE id = '$parent'}),
	'the children completed, and so their parent');

# Each completion wrote its trail.
is($node->safe_psql('postgres', q{
SELECT string_agg(a.event || ':' || coalesce(a.to_status, ''), ' ' ORDER BY a.id)
  FROM agent_tasks_internal.activities a JOIN agent_tasks_internal.tasks t ON t.account = a.account AND t.id = a.task_id
 WHERE t.title = 'plain'}),
	'created:queued status_changed:in_progress status_changed:completed',
	'an output writes the trail of a completion');

# A run cancelled while its agent works: the agent is done, the executor
# waits for the task, which a person holds and cancels.
my $slow = $node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('slow', agent => 'answer', auto_process => true)});
$node->poll_query_until('postgres', qq{
SELECT status = 'in_progress' FROM agent_tasks_internal.tasks WHERE id = '$slow'})
  or die 'the slow task did not start';
my ($out, $err) = ('', '');
my $canceller = IPC::Run::start(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', qq{
SET agent_tasks.account = 'tap';
BEGIN;
SELECT 1 FROM agent_tasks_internal.tasks WHERE id = '$slow' FOR UPDATE;
DO \$\$
BEGIN
	LOOP
		PERFORM pg_stat_clear_snapshot();
		EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
						   WHERE backend_type = 'agent_tasks executor' AND wait_event_type = 'Lock');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
\$\$;
SELECT status FROM agent_tasks.cancel_task('$slow');
COMMIT;
} ],
	'>', \$out, '2>', \$err);
$canceller->finish;
is($err, '', 'the person held the task until the executor waited for it, then cancelled it');
ok($node->poll_query_until('postgres', qq{
SELECT r.status = 'cancelled' AND r.lease_expires_at IS NULL
  FROM agent_tasks_internal.tasks t JOIN agent_tasks_internal.runs r ON r.account = t.account AND r.id = t.latest_run_id
 WHERE t.id = '$slow'}), 'the run stays cancelled');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.side_effects WHERE title = 'slow'}),
	'0', "the cancelled run's agent changes were rolled back");
is($node->safe_psql('postgres', qq{SELECT status FROM agent_tasks_internal.tasks WHERE id = '$slow'}),
	'cancelled', 'the task is cancelled');

$node->stop;
done_testing();
