# A database holding agent_tasks rows of every kind (data/fill.sql), and the
# checks that such a database, restored or upgraded, still holds every row
# and still works.  Used by t/040_dump_restore.pl and t/041_upgrade.pl.
#
#   FilledDatabase::fill($node, 'app');
#   my $rows = FilledDatabase::table_rows($node, 'app');  # counts and digests
#   FilledDatabase::save_rows($node, 'app');  ...  FilledDatabase::rows_kept(...)
#   FilledDatabase::check_works($node, 'app');            # runs Test::More checks
package FilledDatabase;

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Utils;
use Test::More;

my $data = "$FindBin::Bin/../data";

sub fill
{
	my ($node, $db) = @_;
	$node->safe_psql($db, slurp_file("$data/fill.sql"));
}

sub table_rows
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, slurp_file("$data/table_rows.sql"));
}

# Save every row before an upgrade; after it, one line per table saying
# how many saved rows are still there unchanged (they may have new columns).
sub save_rows
{
	my ($node, $db) = @_;
	$node->safe_psql($db, slurp_file("$data/rows_saved.sql"));
}

sub rows_kept
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, slurp_file("$data/rows_kept.sql"));
}

sub catalog
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, slurp_file("$data/extension_catalog.sql"));
}

# The node's workers must serve $db (agent_tasks.database).
sub check_works
{
	my ($node, $db) = @_;
	my $task = sub {
		my ($name) = @_;
		return $node->safe_psql($db, "SELECT value FROM public.fill WHERE name = '$name'");
	};
	my $status_of = sub {
		my ($name) = @_;
		return "SELECT status FROM agent_tasks_internal.tasks WHERE id = '" . $task->($name) . "'";
	};
	my $as_ann = "SET agent_tasks.account = 'backup'; SET agent_tasks.\"user\" = 'ann\@example.com';";

	ok($node->poll_query_until($db, 'SELECT (' . $status_of->('queued_sql') . ") = 'completed'"),
		'the queued run of the sql agent is executed by the workers');
	is($node->safe_psql($db, "SELECT output ->> 'answer' FROM agent_tasks_internal.tasks WHERE id = '"
			. $task->('queued_sql') . "'"),
		'queued for answerer', 'with the output of its agent');

	is($node->safe_psql($db, $as_ann . "SELECT status FROM agent_tasks.complete_run('"
			. $task->('in_progress_run') . "', '{\"done\": true}', worker => 'w1')"),
		'completed', 'the external worker completes the run it held');

	is($node->safe_psql($db, $as_ann . "SELECT FROM agent_tasks.send_message('"
			. $task->('needs_clarification') . "', 'Blue'); " . $status_of->('needs_clarification')),
		'queued', 'the answer to the clarification re-queues its task');
	is($node->safe_psql($db, $as_ann . "SELECT status FROM agent_tasks.process_task('"
			. $task->('on_hold') . "')"),
		'queued', 'the task on hold resumes');
	is($node->safe_psql($db, "SELECT event || ' ' || from_status || ' -> ' || to_status
			FROM agent_tasks_internal.activities WHERE task_id = '" . $task->('on_hold') . "'
			ORDER BY id DESC LIMIT 1"),
		'status_changed on_hold -> queued', 'and the change is logged');

	my ($rc, $out, $err) = $node->psql($db,
		"UPDATE agent_tasks_internal.tasks SET status = 'completed' WHERE id = '" . $task->('pending') . "'");
	like($err, qr/cannot move from pending to completed/, 'the state machine still checks direct changes');

	like($node->safe_psql($db, "BEGIN;
		SELECT FROM set_config('request.headers', json_build_object('x-api-key',
			(SELECT value FROM public.fill WHERE name = 'api_key'))::text, true);
		SELECT FROM agent_tasks.authenticate();
		SELECT 'account ' || (current_setting('request.jwt.claims')::jsonb ->> 'account');
		COMMIT;"),
		qr/^account backup$/m, 'the API key is still valid');

	($rc, $out, $err) = $node->psql($db,
		'SET ROLE agent_tasks_admin; SELECT secret FROM agent_tasks_internal.agent_secrets');
	like($err, qr/permission denied/, 'agent secrets stay unreadable');
	is($node->safe_psql($db, "SELECT count(*) FROM cron.job j JOIN agent_tasks_internal.schedules s ON s.job_name = j.jobname
		  WHERE s.name = 'nightly'"),
		'1', 'the schedule is still in pg_cron');
}

1;
