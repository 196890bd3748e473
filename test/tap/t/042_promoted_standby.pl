# Failover: a primary's executor has runs in progress when the primary dies;
# a streaming standby is promoted.  The promoted server's life begins at the
# promotion, so those runs (started by the old primary's workers) are
# recovered at once, not when their leases expire, and completed by the new
# primary's executor: none lost, each task completed once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $primary = AgentTasksTest::new_node('primary', allows_streaming => 1);
$primary->append_conf('postgresql.conf', "agent_tasks.executor_workers = 1\nagent_tasks.poll_interval = 100\n");
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION agent_tasks;
-- The first attempt sleeps far longer than the test; later ones finish.
CREATE FUNCTION public.slow_first(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF run.attempt = 1 THEN
		PERFORM pg_sleep(600);
	END IF;
	RETURN jsonb_build_object('attempt', run.attempt);
END $$;
SET agent_tasks.account = 'tap';
SELECT agent_tasks.create_agent('slow', 'sql', 'public.slow_first', timeout => '20 minutes', backoff_base => '0');
});

$primary->backup('base');
# (the backup brings the primary's settings, agent_tasks preloaded)
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', q{
SET agent_tasks.account = 'tap';
SELECT count(agent_tasks.create_task('failover ' || i, agent => 'slow', auto_process => true))
  FROM generate_series(1, 3) i;
});
ok($primary->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM agent_tasks_internal.runs WHERE status = 'in_progress'"),
	'the primary\'s executor has claimed the three runs');
ok($primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM agent_tasks.worker_status() WHERE worker = 'executor-1' AND state = 'running'"),
	'and is executing the first');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT count(*) FROM agent_tasks_internal.runs WHERE status = 'in_progress'"),
	'3', 'the standby has the runs in progress');

$primary->stop('immediate');
$standby->promote;

# Their leases run for 20 minutes and more: only the new server life
# recovers them within the test.
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM agent_tasks_internal.tasks WHERE status = 'completed'"),
	'every task completed on the promoted standby');
is($standby->safe_psql('postgres', q{
SELECT string_agg(n::text, ' ' ORDER BY n) FROM (
	SELECT count(*) FILTER (WHERE r.status = 'completed') AS n
	  FROM agent_tasks_internal.tasks t JOIN agent_tasks_internal.runs r ON r.task_id = t.id
	 GROUP BY t.id) x}),
	'1 1 1', 'each task completed by exactly one run');
is($standby->safe_psql('postgres', q{
SELECT string_agg(DISTINCT status || ':' || coalesce(status_reason, ''), ' ')
  FROM agent_tasks_internal.runs WHERE attempt = 1}),
	'failed:worker_lost', 'the runs of the old primary failed as worker_lost');
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM agent_tasks_internal.runs WHERE status NOT IN ('completed', 'failed')"),
	'0', 'nothing left in progress or queued');

$standby->stop;
done_testing();
