# The executor keeps the plan of each agent function's call for the rest
# of its life.  A kept plan must follow the function: replaced, renamed
# (the agent's target altered), dropped, or made to return something else,
# the next run calls what the agent names now, and a missing function fails
# its run, not the executor.
#
# Kept plans made while the tables were new and never analyzed are made
# again with statistics: the launcher analyzes a table of the extension as
# soon as it fills its first pages, without waiting for autovacuum (off
# here).  They also follow the extension dropped and created again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('plans');
$node->append_conf('postgresql.conf',
	"agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 100\nautovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"version": 1}'::jsonb $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('answer', 'sql', 'public.answer', max_attempts => 1);
});

my $n = 0;
# Create a task, wait for its end, return "status output-or-error-message".
sub run_once
{
	$n++;
	my $id = $node->safe_psql('postgres', qq{
SET agent_tasks.account = 'tap';
SELECT id FROM agent_tasks.create_task('task $n', agent => 'answer', auto_process => true)});
	$node->poll_query_until('postgres', qq{
SELECT status IN ('completed', 'failed') FROM agent_tasks_internal.tasks WHERE id = '$id'})
	  or die "task $n did not finish";
	return $node->safe_psql('postgres', qq{
SELECT status || ' ' || coalesce(output::text, error ->> 'message')
  FROM agent_tasks_internal.tasks WHERE id = '$id'});
}

is(run_once(), 'completed {"version": 1}', 'first run: the function as created');
is(run_once(), 'completed {"version": 1}', 'second run: the kept plan');

$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT jsonb_build_object('version', 2, 'title', task.title) $$;
});
like(run_once(), qr/^completed \{"title": "task 3", "version": 2\}$/, 'a replaced function is called anew');

$node->safe_psql('postgres', q{
ALTER FUNCTION public.answer(agent_tasks.tasks, agent_tasks.runs) RENAME TO answer2;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.alter_agent('answer', '{"target": "public.answer2"}');
});
like(run_once(), qr/^completed \{"title": "task 4", "version": 2\}$/, 'a renamed function is called by its new name');

$node->safe_psql('postgres', q{
DROP FUNCTION public.answer2(agent_tasks.tasks, agent_tasks.runs);
});
like(run_once(), qr/^failed .*answer2.*/, 'a dropped function fails the run, naming it');

$node->safe_psql('postgres', q{
CREATE FUNCTION public.answer2(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"version": 3}'::jsonb $$;
});
is(run_once(), 'completed {"version": 3}', 'a function created again under the name is called');
is($node->safe_psql('postgres', "SELECT count(*) FROM agent_tasks.worker_status() WHERE worker = 'executor-1' AND pid IS NOT NULL"),
	'1', 'the same executor served every run');

is($node->safe_psql('postgres', q{
SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class
 WHERE relnamespace = 'agent_tasks_internal'::regnamespace AND relkind = 'r' AND reltuples >= 0}),
	'', 'nothing is analyzed while the tables are nearly empty');
$node->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT count(agent_tasks.create_task('filler ' || i)) FROM generate_series(1, 500) i;
});
# (analyzed once, possibly while the rows above were still being written:
# any statistics end the ties, and autovacuum keeps them from then on)
ok($node->poll_query_until('postgres', q{
SELECT reltuples >= 0 FROM pg_class WHERE oid = 'agent_tasks_internal.tasks'::regclass}),
	'a table that fills up is analyzed by the launcher');
is($node->safe_psql('postgres', q{
SELECT reltuples < 0 FROM pg_class WHERE oid = 'agent_tasks_internal.agents'::regclass}),
	't', 'a table still nearly empty is left to autovacuum');

# The extension dropped and created again under a running executor: its
# plans and its knowledge that the extension is installed follow.
my $executor_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'agent_tasks executor'");
$node->safe_psql('postgres', 'DROP EXTENSION agent_tasks CASCADE');
# ten polls or so with nothing to claim
sleep 1;
$node->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
CREATE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"version": 4}'::jsonb $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('answer', 'sql', 'public.answer', max_attempts => 1);
});
is(run_once(), 'completed {"version": 4}', 'a new install\'s task is run');
is($node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'agent_tasks executor'"),
	$executor_pid, 'by the executor that ran the old install\'s');
# (a poll that began before the DROP committed may fail once)
my @failed = slurp_file($node->logfile) =~ /executor-1 could not claim runs/g;
cmp_ok(scalar(@failed), '<=', 1, 'the polls while the extension was away claimed nothing and failed nothing');

$node->stop;
done_testing();
