# ALTER EXTENSION agent_tasks UPDATE from the released 0.1.0, with rows of
# every kind: every row survives, the upgraded extension equals a fresh
# install of the current version object for object (functions, tables,
# columns, indexes, constraints, triggers, policies, views, privileges,
# comments, dump registration), and the upgraded database works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;
use FilledDatabase;

my $node = AgentTasksTest::new_node('upgrade');
$node->append_conf('postgresql.conf', "cron.database_name = 'app'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

$node->safe_psql('app', "CREATE EXTENSION agent_tasks VERSION '0.1.0'");
FilledDatabase::fill($node, 'app');
FilledDatabase::save_rows($node, 'app');

my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'agent_tasks'");
isnt($current, '0.1.0', "the current version ($current) is not the released one");
$node->safe_psql('app', 'ALTER EXTENSION agent_tasks UPDATE');
is($node->safe_psql('app', "SELECT extversion FROM pg_extension WHERE extname = 'agent_tasks'"),
	$current, "updated to $current");
my $kept = FilledDatabase::rows_kept($node, 'app');
# (agent_usage is new: it gets the agents' use, checked below)
my @lost = grep { !/^\w+: (\d+)\/\1, now \1$/ && !/^agent_usage: 0\/0, now \d+$/ } split /\n/, $kept;
is(join("\n", @lost), '', 'every row survived the update, unchanged');
like($kept, qr/^tasks: 1\d\/1\d, now 1\d$/m, 'tasks were there to keep');
is($node->safe_psql('app', q{
SELECT string_agg(a.name || ' ' || u.shard || ' ' || u.tokens, ', ')
  FROM agent_tasks_internal.agent_usage u JOIN agent_tasks_internal.agents a ON a.account = u.account AND a.id = u.agent_id}),
	'remote 0 42', "the agents' use moved to their first usage shard");

$node->safe_psql('fresh', 'CREATE EXTENSION agent_tasks');
my $upgraded = FilledDatabase::catalog($node, 'app');
my $fresh = FilledDatabase::catalog($node, 'fresh');
like($fresh, qr/^function agent_tasks\.create_task/m, 'the catalog description lists functions');
is($upgraded, $fresh, 'the upgraded extension equals a fresh install');

$node->append_conf('postgresql.conf', "agent_tasks.database = 'app'\n");
$node->restart;
FilledDatabase::check_works($node, 'app');

$node->stop;
done_testing();
