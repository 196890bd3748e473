-- How tasks wait for each other: dependencies (a task is queued when its
-- last blocker completes; a failed or cancelled blocker cancels it) and
-- command mode (a parent follows its children).

CREATE FUNCTION agent_tasks.add_dependency(task uuid, depends_on uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks;
	blocker agent_tasks_internal.tasks;
	cycle uuid[];
BEGIN
	-- One writer of the dependency graph per account at a time, so that two
	-- concurrent additions cannot close a cycle that neither of them sees.
	PERFORM pg_advisory_xact_lock(hashtextextended('agent_tasks.dependencies:' || agent_tasks.current_account(), 0));
	-- the blocker first: a finishing blocker locks its dependents after itself
	blocker := agent_tasks_internal.lock_task(depends_on);
	t := agent_tasks_internal.lock_task(task);
	IF t.id = blocker.id THEN
		PERFORM agent_tasks_internal.raise('PT409', 'a task cannot depend on itself',
			format('task %s', t.id), NULL);
	END IF;
	IF t.status <> 'pending' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'dependencies can be added only to pending tasks',
			format('task %s is %s', t.id, t.status),
			'Add dependencies before processing the task.');
	END IF;
	IF blocker.status IN ('failed', 'cancelled') THEN
		PERFORM agent_tasks_internal.raise('PT409', 'a task cannot depend on a failed or cancelled task',
			format('task %s is %s', blocker.id, blocker.status),
			'Retry the blocker first.');
	END IF;

	WITH RECURSIVE reach(id, path) AS (
		SELECT blocker.id, ARRAY[t.id, blocker.id]
		UNION ALL
		SELECT d.depends_on, r.path || d.depends_on
		  FROM reach r
		  JOIN agent_tasks_internal.task_dependencies d ON d.account = t.account AND d.task_id = r.id
		 WHERE d.depends_on <> ALL (r.path[2:])
	)
	SELECT r.path || t.id INTO cycle FROM reach r
	  JOIN agent_tasks_internal.task_dependencies d
		ON d.account = t.account AND d.task_id = r.id AND d.depends_on = t.id
	 LIMIT 1;
	IF cycle IS NOT NULL OR EXISTS (
		SELECT 1 FROM agent_tasks_internal.task_dependencies d
		 WHERE d.account = t.account AND d.task_id = blocker.id AND d.depends_on = t.id) THEN
		PERFORM agent_tasks_internal.raise('PT409', 'dependency would create a cycle',
			format('cycle: %s', array_to_string(coalesce(cycle, ARRAY[t.id, blocker.id, t.id]), ' -> ')),
			'Remove one of the dependencies on that path first.');
	END IF;

	INSERT INTO agent_tasks_internal.task_dependencies (account, task_id, depends_on)
	VALUES (t.account, t.id, blocker.id)
	ON CONFLICT DO NOTHING;
	IF blocker.status <> 'completed' AND t.status_reason IS DISTINCT FROM 'blocked' THEN
		UPDATE agent_tasks_internal.tasks SET status_reason = 'blocked', updated_at = now()
		 WHERE account = t.account AND id = t.id;
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.add_dependency(uuid, uuid) IS 'Make a pending task wait for another (PT409 for a cycle). It stays pending with reason blocked and is queued when its last blocker completes; a failed or cancelled blocker cancels it.';

CREATE FUNCTION agent_tasks.remove_dependency(task uuid, depends_on uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	DELETE FROM agent_tasks_internal.task_dependencies d
	 WHERE d.account = t.account AND d.task_id = t.id AND d.depends_on = remove_dependency.depends_on;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'dependency not found',
			format('task %s does not depend on %s', t.id, remove_dependency.depends_on), NULL);
	END IF;
	PERFORM agent_tasks_internal.release_if_ready(t);
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.remove_dependency(uuid, uuid) IS 'Stop a task from waiting for another; a blocked task whose last blocker goes is queued.';

-- Queue a blocked task once nothing blocks it any more.
CREATE FUNCTION agent_tasks_internal.release_if_ready(t agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF t.status = 'pending' AND t.status_reason = 'blocked'
		AND cardinality(agent_tasks_internal.unfinished_blockers(t.account, t.id)) = 0 THEN
		PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after, 'dependencies_met');
	END IF;
END
$$;

CREATE VIEW agent_tasks.ready_tasks WITH (security_invoker = true) AS
SELECT v.*
  FROM agent_tasks.tasks v
 WHERE v.status = 'pending'
   AND NOT v.archived
   AND NOT EXISTS (
		SELECT 1
		  FROM agent_tasks_internal.task_dependencies d
		  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
		 WHERE d.account = v.account AND d.task_id = v.id AND b.status <> 'completed');
COMMENT ON VIEW agent_tasks.ready_tasks IS 'Pending tasks whose dependencies are all completed: ready to process.';

CREATE VIEW agent_tasks.dependencies WITH (security_invoker = true) AS
SELECT d.account, d.task_id, d.depends_on, b.status AS depends_on_status, d.created_at
  FROM agent_tasks_internal.task_dependencies d
  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on;
COMMENT ON VIEW agent_tasks.dependencies IS 'Which task waits for which, with the blocker''s status.';

-- A blocker failed or was cancelled: cancel every unfinished task that
-- waits for it, directly or through other tasks, each naming the blocker it
-- waited for.  The whole closure is found and changed here, set-wise, so
-- that a long chain costs one statement, not one per link: the
-- dependents' own transitions then find nothing left to cancel.
CREATE FUNCTION agent_tasks_internal.cancel_dependents(blocker agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids uuid[];
	reasons text[];
	dependent record;
BEGIN
	-- The walk stops at finished tasks, so the dependents' own transitions,
	-- once they are cancelled, find nothing more to do.
	WITH RECURSIVE closure(id, blocker_id, blocker_status) AS (
		SELECT t.id, blocker.id, blocker.status
		  FROM agent_tasks_internal.task_dependencies d
		  JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id
		 WHERE d.account = blocker.account AND d.depends_on = blocker.id
		   AND agent_tasks.status_kind(t.status) <> 'terminal'
		UNION
		SELECT t.id, c.id, 'cancelled'
		  FROM closure c
		  JOIN agent_tasks_internal.task_dependencies d ON d.account = blocker.account AND d.depends_on = c.id
		  JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id
		 WHERE agent_tasks.status_kind(t.status) <> 'terminal'
	)
	SELECT array_agg(x.id ORDER BY x.id), array_agg(x.reason ORDER BY x.id) INTO ids, reasons
	  FROM (SELECT DISTINCT ON (c.id) c.id, format('dependency_%s:%s', c.blocker_status, c.blocker_id) AS reason
			  FROM closure c
			 ORDER BY c.id, c.blocker_status DESC, c.blocker_id) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;

	-- Waiting for blockers, they are pending without an open run: one update.
	UPDATE agent_tasks_internal.tasks t
	   SET status = 'cancelled', status_reason = x.reason, updated_at = now()
	  FROM unnest(ids, reasons) AS x(id, reason)
	 WHERE t.account = blocker.account AND t.id = x.id
	   AND t.status = 'pending'
	   AND NOT EXISTS (SELECT 1 FROM agent_tasks_internal.runs r
						WHERE r.account = t.account AND r.id = t.latest_run_id
						  AND agent_tasks.status_kind(r.status) <> 'terminal');
	-- Any other (a run was started by hand meanwhile) through its run.
	FOR dependent IN
		SELECT t AS task, x.reason
		  FROM unnest(ids, reasons) AS x(id, reason)
		  JOIN agent_tasks_internal.tasks t ON t.account = blocker.account AND t.id = x.id
		 WHERE agent_tasks.status_kind(t.status) <> 'terminal'
		 ORDER BY t.id
		   FOR UPDATE OF t
	LOOP
		PERFORM agent_tasks_internal.move_task(dependent.task, 'cancelled', dependent.reason);
	END LOOP;
END
$$;

-- A child of a command-mode parent moved (src/transitions.c calls this
-- with the parent locked and unfinished).  The parent has no run of its
-- own: it starts with its first child and ends with its last one.  Only a
-- finished child can be the last, so only then are the children counted
-- (queueing N children stays linear).
CREATE FUNCTION agent_tasks_internal.child_moved(parent agent_tasks_internal.tasks, child_status text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	children record;
BEGIN
	IF agent_tasks.status_kind(child_status) <> 'terminal' THEN
		IF parent.status = 'queued' AND child_status = 'in_progress' THEN
			UPDATE agent_tasks_internal.tasks p SET status = 'in_progress', status_reason = NULL, updated_at = now()
			 WHERE p.account = parent.account AND p.id = parent.id;
		END IF;
		RETURN;
	END IF;

	IF parent.status NOT IN ('queued', 'in_progress')
		OR EXISTS (SELECT 1 FROM agent_tasks_internal.tasks c
					WHERE c.account = parent.account AND c.parent_id = parent.id
					  AND agent_tasks.status_kind(c.status) <> 'terminal') THEN
		RETURN;
	END IF;

	-- The last child finished.  One row per child, kind and resource: count
	-- children once each, and gather resources in item order.
	SELECT count(DISTINCT c.id) FILTER (WHERE c.status = 'failed') AS failed,
		   count(DISTINCT c.id) FILTER (WHERE c.status = 'completed') AS completed,
		   jsonb_build_object(
			   'created', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'created'), '[]'),
			   'modified', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'modified'), '[]'),
			   'deleted', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'deleted'), '[]')) AS resources
	  INTO children
	  FROM agent_tasks_internal.tasks c
	  LEFT JOIN LATERAL (VALUES ('created'), ('modified'), ('deleted')) AS kinds(k) ON true
	  LEFT JOIN LATERAL jsonb_array_elements(
			CASE WHEN jsonb_typeof(c.output -> k) = 'array' THEN c.output -> k END) WITH ORDINALITY AS e(value, n) ON true
	 WHERE c.account = parent.account AND c.parent_id = parent.id;

	IF parent.status = 'queued' THEN
		UPDATE agent_tasks_internal.tasks p SET status = 'in_progress', status_reason = NULL, updated_at = now()
		 WHERE p.account = parent.account AND p.id = parent.id;
	END IF;
	UPDATE agent_tasks_internal.tasks p
	   SET status = CASE WHEN children.failed > 0 THEN 'failed'
						 WHEN children.completed = 0 THEN 'cancelled' ELSE 'completed' END,
		   status_reason = CASE WHEN children.failed > 0 THEN 'child_failed'
								WHEN children.completed = 0 THEN 'children_cancelled' END,
		   output = children.resources,
		   error = CASE WHEN children.failed > 0
						THEN jsonb_build_object('message', format('%s child task(s) failed', children.failed)) END,
		   updated_at = now()
	 WHERE p.account = parent.account AND p.id = parent.id;
END
$$;
