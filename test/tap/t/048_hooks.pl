# Task hooks fire for changes made by an in-server worker and by a
# schedule, as they do for the API and external workers (sql/24_hooks):
# once per event, in order, as the role that registered them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('hooks');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 50\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE EXTENSION pg_cron;
CREATE ROLE hook_owner LOGIN;
GRANT agent_tasks_admin TO hook_owner;
GRANT USAGE ON SCHEMA cron TO hook_owner;
CREATE SCHEMA app AUTHORIZATION hook_owner;
CREATE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"ok": true}'::jsonb $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('answer', 'sql', 'public.answer');
SET ROLE hook_owner;
CREATE TABLE app.seen (n serial, event text, title text, previous text, who text);
CREATE FUNCTION app.record(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql
	BEGIN ATOMIC
		INSERT INTO app.seen (event, title, previous, who) VALUES (event, task.title, previous_status, current_user);
	END;
SELECT agent_tasks.create_hook('record', '{*}', 'app.record');
});

# An in-server worker runs the task's sql agent.
my $task = $node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('By the executor', agent => 'answer', auto_process => true);
});
ok($node->poll_query_until('postgres',
	"SELECT status = 'completed' FROM agent_tasks_internal.tasks WHERE id = '$task'"),
	'the executor completed the task');
is($node->safe_psql('postgres', q{
SELECT string_agg(event || ':' || coalesce(previous, '-') || ':' || who, ' ' ORDER BY n)
  FROM app.seen WHERE title = 'By the executor'}),
	'task.created:-:hook_owner task.queued:-:hook_owner task.started:queued:hook_owner '
	. 'task.completed:in_progress:hook_owner',
	'each change by the API and the executor fired the hook once, in order, as its owner');

# A schedule: pg_cron runs the job's command as the role that scheduled it;
# the command is run here as pg_cron would, rather than waiting for a minute.
$node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT agent_tasks.schedule_task('nightly', '0 3 * * *',
	'{"title": "Scheduled", "agent": "answer", "auto_process": true}');
});
my $command = $node->safe_psql('postgres', q{
SELECT command FROM cron.job WHERE jobname LIKE 'agent_tasks:%'});
like($command, qr/fire_schedule/, 'the schedule is a pg_cron job');
$node->safe_psql('postgres', $command);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM app.seen WHERE title = 'Scheduled'"),
	'the scheduled task ran');
is($node->safe_psql('postgres', q{
SELECT string_agg(event, ' ' ORDER BY n) FROM app.seen WHERE title = 'Scheduled'}),
	'task.created task.queued task.started task.completed',
	'a task made by a schedule fired the hook for each change');

# Dropping the extension removes the hooks with it.
$node->safe_psql('postgres', 'DROP EXTENSION agent_tasks CASCADE');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_class WHERE relname = 'hooks' AND relnamespace::regnamespace::text = 'agent_tasks_internal'"),
	'0', 'DROP EXTENSION takes the hooks');

$node->stop;
done_testing();
