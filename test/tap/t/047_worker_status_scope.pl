# worker_status() shows each caller only its own account's runs and errors
# (issue 10).  An executor fails a run of account A (its function raises an
# error naming the task); the admin of account A sees that error, the admin
# of account B does not (nor the counters, which add up every account's
# runs); a superuser and a member of pg_monitor see everything.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('worker_status_scope');
$node->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION agent_tasks;
	CREATE ROLE scope_admin IN ROLE agent_tasks_admin;
	CREATE ROLE scope_monitor IN ROLE agent_tasks_admin, pg_monitor;
	CREATE FUNCTION public.boom(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
		LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'secret plan of A: %', task.title; END $$;
	GRANT EXECUTE ON FUNCTION public.boom(agent_tasks.tasks, agent_tasks.runs) TO scope_admin;
});
$node->safe_psql('postgres', q{
	SET ROLE scope_admin;
	SET agent_tasks.account = 'acct-a';
	SELECT agent_tasks.create_agent('boom', 'sql', 'public.boom', max_attempts => 1);
	SELECT agent_tasks.create_task('merger with B', agent => 'boom', auto_process => true);
});
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM agent_tasks.worker_status() WHERE last_error LIKE 'secret plan of A%'"),
	'the executor failed the run of account A');

sub errors_seen
{
	my ($role, $account) = @_;
	return $node->safe_psql('postgres', qq{
		SET ROLE $role;
		SET agent_tasks.account = '$account';
		SELECT count(*) FILTER (WHERE last_error LIKE 'secret plan of A%') || ' errors, '
			|| count(*) FILTER (WHERE runs_done IS NOT NULL) || ' counters'
		  FROM agent_tasks.worker_status();
	});
}
is(errors_seen('scope_admin', 'acct-a'), '1 errors, 0 counters', 'the admin of account A sees its error');
is(errors_seen('scope_admin', 'acct-b'), '0 errors, 0 counters', 'the admin of account B does not');
like(errors_seen('scope_monitor', 'acct-b'), qr/^1 errors, [1-9]\d* counters$/, 'pg_monitor sees everything');
like($node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE last_error LIKE 'secret plan of A%') || ' errors, '
			|| count(*) FILTER (WHERE runs_done IS NOT NULL) || ' counters'
		  FROM agent_tasks.worker_status()}),
	qr/^1 errors, [1-9]\d* counters$/, 'so does a superuser');

$node->stop;
done_testing();
