# pg_dump keeps every row: a database with rows of every kind is dumped
# (custom format) and restored into a fresh cluster with pg_restore, the
# extension coming from the dump.  Every table holds the same rows
# afterwards (no activity, delivery or rate count added by the restore),
# and the restored database works: queued runs execute, waiting tasks
# resume, the API key and the schedule are still there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;
use FilledDatabase;

# The source's workers serve another database, so nothing in app moves
# between the fill and the dump.
my $source = AgentTasksTest::new_node('source');
$source->append_conf('postgresql.conf', "cron.database_name = 'app'\n");
$source->start;
$source->safe_psql('postgres', 'CREATE DATABASE app');
$source->safe_psql('app', 'CREATE EXTENSION agent_tasks');
FilledDatabase::fill($source, 'app');
my $rows = FilledDatabase::table_rows($source, 'app');
my $jobs = $source->safe_psql('app', 'SELECT jobname, schedule, command FROM cron.job ORDER BY jobname');

my $dump = "$PostgreSQL::Test::Utils::tmp_check/app.dump";
$source->command_ok(['pg_dump', '--format=custom', "--file=$dump", '--dbname=' . $source->connstr('app')],
	'pg_dump');
$source->stop;

# Restored first with workers serving another database, to compare at rest.
my $target = AgentTasksTest::new_node('target');
$target->append_conf('postgresql.conf', "cron.database_name = 'app'\n");
$target->start;
$target->safe_psql('postgres', 'CREATE DATABASE app');
$target->command_ok(['pg_restore', '--exit-on-error', '--dbname=' . $target->connstr('app'), $dump],
	'pg_restore, CREATE EXTENSION included');

is(FilledDatabase::table_rows($target, 'app'), $rows, 'every table holds the same rows');
like($rows, qr/^tasks 1[0-9] /m, 'tasks were there to restore');
is($target->safe_psql('app', 'SELECT jobname, schedule, command FROM cron.job ORDER BY jobname'), $jobs,
	'pg_cron jobs restored with them');

$target->append_conf('postgresql.conf', "agent_tasks.database = 'app'\n");
$target->restart;
FilledDatabase::check_works($target, 'app');

$target->stop;
done_testing();
