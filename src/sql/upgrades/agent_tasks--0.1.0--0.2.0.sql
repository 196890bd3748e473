-- agent_tasks 0.1.0 -> 0.2.0.  Every schema change since 0.1.0, in the order
-- made; test/upgrade checks that the result equals a fresh 0.2.0 install.

\echo Use "ALTER EXTENSION agent_tasks UPDATE TO '0.2.0'" to load this file. \quit

-- Backups (issue 8) ----------------------------------------------------------

-- A restore by pg_dump / pg_restore loads rows as they were: the triggers
-- that would take them for new changes step aside (src/restore.c).
CREATE FUNCTION agent_tasks_internal.restoring() RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_restoring'
	LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION agent_tasks_internal.restoring() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agent_tasks_internal.restoring() TO agent_tasks_reader;

DROP TRIGGER enforce_status_transition ON agent_tasks_internal.tasks;
DROP TRIGGER enforce_status_transition ON agent_tasks_internal.runs;
DROP TRIGGER task_changed ON agent_tasks_internal.tasks;
DROP TRIGGER assignee_changed ON agent_tasks_internal.task_assignees;
DROP TRIGGER follower_changed ON agent_tasks_internal.task_followers;
DROP TRIGGER dependency_changed ON agent_tasks_internal.task_dependencies;
DROP TRIGGER message_added ON agent_tasks_internal.messages;
DROP TRIGGER run_changed ON agent_tasks_internal.runs;
DROP TRIGGER run_signals ON agent_tasks_internal.runs;
DROP TRIGGER bind_agent_role ON agent_tasks_internal.agents;
DROP TRIGGER task_rate_limit ON agent_tasks_internal.tasks;
DROP TRIGGER webhook_task_changed ON agent_tasks_internal.tasks;
DROP TRIGGER webhook_message_added ON agent_tasks_internal.messages;
DROP TRIGGER run_files ON agent_tasks_internal.runs;

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('task');

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('run');

CREATE TRIGGER task_changed
	AFTER INSERT OR UPDATE OR DELETE ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_changed();

CREATE TRIGGER assignee_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_assignees
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('assignee');

CREATE TRIGGER follower_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_followers
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('follower');

CREATE TRIGGER dependency_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_dependencies
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('dependency');

CREATE TRIGGER message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.message_added();

CREATE TRIGGER run_changed
	AFTER INSERT OR UPDATE OF status ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.run_changed();

CREATE TRIGGER run_signals
	AFTER INSERT OR UPDATE OF status ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.run_signals();

CREATE TRIGGER bind_agent_role
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.agents
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.bind_agent_role();

CREATE TRIGGER task_rate_limit
	BEFORE INSERT ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.parent_id IS NULL)
	EXECUTE FUNCTION agent_tasks_internal.task_rate_limit();

CREATE TRIGGER webhook_task_changed
	AFTER INSERT OR UPDATE OF status, feedback ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.webhook_task_changed();

CREATE TRIGGER webhook_message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.webhook_message_added();

CREATE TRIGGER run_files
	AFTER INSERT ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.input ? 'files')
	EXECUTE FUNCTION agent_tasks_internal.run_files();

-- Every table's rows are saved by pg_dump with the extension.
-- (One call per statement: each updates the extension's catalog row.)
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
			  ORDER BY c.relname
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(t, '');
	END LOOP;
END
$$;

-- queue_stats shows runs of tasks without an agent.
CREATE OR REPLACE VIEW agent_tasks.queue_stats WITH (security_invoker = true) AS
SELECT coalesce(a.account, r.account) AS account,
	   a.name AS agent,
	   coalesce(a.kind, 'external') AS kind,
	   count(r.id) FILTER (WHERE r.status = 'queued') AS queued,
	   count(r.id) FILTER (WHERE r.status = 'queued' AND r.due_at <= now()) AS runnable,
	   count(r.id) FILTER (WHERE r.status = 'in_progress') AS in_progress,
	   now() - min(r.queued_at) FILTER (WHERE r.status = 'queued') AS oldest_queued_age,
	   count(r.id) FILTER (WHERE r.status = 'completed' AND r.ended_at > now() - interval '1 hour') AS completed_last_hour,
	   count(r.id) FILTER (WHERE r.status = 'failed' AND r.ended_at > now() - interval '1 hour') AS failed_last_hour,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.ended_at - r.started_at))
		   FILTER (WHERE r.ended_at > now() - interval '1 hour' AND r.started_at IS NOT NULL) AS duration_p50_seconds,
	   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.ended_at - r.started_at))
		   FILTER (WHERE r.ended_at > now() - interval '1 hour' AND r.started_at IS NOT NULL) AS duration_p95_seconds,
	   coalesce(a.used_tokens, 0) AS used_tokens,
	   coalesce(a.used_cost, 0) AS used_cost
  FROM agent_tasks_internal.agents a
  FULL JOIN agent_tasks_internal.runs r ON r.account = a.account AND r.agent_id = a.id
 GROUP BY coalesce(a.account, r.account), a.id, a.name, a.kind, a.used_tokens, a.used_cost
HAVING a.id IS NOT NULL
	OR count(*) FILTER (WHERE r.status IN ('queued', 'in_progress') OR r.ended_at > now() - interval '1 hour') > 0;
COMMENT ON VIEW agent_tasks.queue_stats IS 'Per agent: queued and runnable runs, runs in progress, age of the oldest queued run, completed and failed in the last hour, run duration p50/p95 (seconds, last hour), tokens and cost used. Runs of tasks without an agent show as agent NULL (kind external) while any is active or ended in the last hour.';
