# Helpers for agent_tasks TAP tests (run by test/check.sh with this
# directory and PostgreSQL's src/test/perl on @INC).
#
#   use AgentTasksTest;
#   my $node = AgentTasksTest::new_node('main');   # initialised, configured, not started
#   $node->start;
#   $node->safe_psql('postgres', 'CREATE EXTENSION agent_tasks');
package AgentTasksTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;

# The same settings as the throwaway cluster of test/cluster.sh.
# AGENT_TASKS_PRELOAD overrides shared_preload_libraries, as there.
sub new_node
{
	my ($name, %params) = @_;
	my $preload = $ENV{AGENT_TASKS_PRELOAD} // 'agent_tasks,pg_cron';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%params);
	$node->append_conf('postgresql.conf', <<"EOC");
shared_preload_libraries = '$preload'
cron.database_name = 'postgres'
agent_tasks.database = 'postgres'
max_worker_processes = 32
max_connections = 200
fsync = off
log_min_messages = warning
EOC
	return $node;
}

1;
