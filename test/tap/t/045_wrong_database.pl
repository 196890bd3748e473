# A wrong agent_tasks.database (issue 10): the launcher says so once, with a
# hint naming the setting, and waits, instead of failing to connect (FATAL)
# every second.  The server works meanwhile; once the database exists the
# workers start in it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('wrong_database');
$node->append_conf('postgresql.conf', <<'EOC');
agent_tasks.database = 'no_such_db'
agent_tasks.poll_interval = 200
EOC
$node->start;

# several seconds: the launcher would have been restarted every second
sleep 6;
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server answers');
my $log = slurp_file($node->logfile);
my @said = $log =~ /(agent_tasks background workers are waiting for database "no_such_db", which does not exist)/g;
is(scalar(@said), 1, 'the launcher said it once') or diag($log);
like($log, qr/HINT:\s+Set agent_tasks.database in postgresql.conf/, 'with a hint naming the setting');
unlike($log, qr/FATAL:.*database "no_such_db" does not exist/, 'no FATAL for it');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'agent_tasks launcher'"),
	'1', 'one launcher, waiting');

sleep 2;
$log = slurp_file($node->logfile);
@said = $log =~ /(waiting for database "no_such_db")/g;
is(scalar(@said), 1, 'still said once, two seconds later');

# the database appears: the launcher connects to it and starts its workers
$node->safe_psql('postgres', 'CREATE DATABASE no_such_db');
ok($node->poll_query_until('postgres', q{
		SELECT count(*) >= 2 FROM pg_stat_activity
		 WHERE datname = 'no_such_db' AND backend_type LIKE 'agent_tasks %'}),
	'once it exists, the launcher and its workers run in it');
$node->safe_psql('no_such_db', 'CREATE EXTENSION agent_tasks');
ok($node->poll_query_until('no_such_db',
		"SELECT count(*) >= 2 FROM agent_tasks.worker_status() WHERE worker LIKE 'executor%' OR worker LIKE 'dispatcher%'"),
	'the workers serve it');

$node->stop;
done_testing();
