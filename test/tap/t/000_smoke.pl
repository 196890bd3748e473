# Proves the TAP harness: a PostgreSQL::Test::Cluster node starts with the
# project's settings as the unprivileged user and answers queries.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('smoke');
$node->start;

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server answers');
my $preload = $ENV{AGENT_TASKS_PRELOAD} // 'agent_tasks,pg_cron';
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	$preload, 'preload libraries as configured');

$node->stop;
done_testing();
