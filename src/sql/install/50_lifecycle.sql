-- The lifecycle a user drives: process, stop, cancel, retry, and the
-- privileged set_task_status.  A task's status follows its latest run; each
-- function changes the run (or, when there is none, the task), and the C
-- state machine checks the move.

-- Queue a new run of a task; run_transition makes it the task's latest.
-- A task created queued names its first run already: that run gets the id.
-- In C (src/transitions.c), which queues the first run of every task.
CREATE FUNCTION agent_tasks_internal.queue_run(t agent_tasks_internal.tasks, attempt integer,
	due_at timestamptz, reason text, input jsonb DEFAULT NULL, id uuid DEFAULT NULL)
	RETURNS uuid
	AS 'MODULE_PATHNAME', 'at_queue_run'
	LANGUAGE C VOLATILE;

-- Move the task's latest run when it is still open, else the task itself.
CREATE FUNCTION agent_tasks_internal.move_task(t agent_tasks_internal.tasks, status text,
	reason text, error jsonb DEFAULT NULL, output jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	is_final boolean := agent_tasks.status_kind(move_task.status) = 'terminal';
BEGIN
	UPDATE agent_tasks_internal.runs r
	   SET status = move_task.status,
		   status_reason = reason,
		   error = coalesce(move_task.error, r.error),
		   output = coalesce(move_task.output, r.output),
		   due_at = CASE WHEN move_task.status = 'queued' THEN now() ELSE r.due_at END,
		   started_at = CASE WHEN move_task.status = 'in_progress' THEN now() ELSE r.started_at END,
		   worker = CASE WHEN move_task.status = 'in_progress' THEN 'role:' || session_user ELSE r.worker END,
		   ended_at = CASE WHEN is_final THEN now() END,
		   lease_expires_at = NULL
	 WHERE r.account = t.account AND r.id = t.latest_run_id
	   AND r.status = t.status AND agent_tasks.status_kind(r.status) <> 'terminal';
	IF NOT FOUND THEN
		UPDATE agent_tasks_internal.tasks
		   SET status = move_task.status, status_reason = reason,
			   error = coalesce(move_task.error, tasks.error),
			   output = coalesce(move_task.output, tasks.output), updated_at = now()
		 WHERE account = t.account AND id = t.id;
	END IF;
END
$$;

-- PL/pgSQL, not SQL: its plan is kept (a SQL function with SET is planned
-- at every call, and every process_task() calls this).
CREATE FUNCTION agent_tasks_internal.unfinished_blockers(account text, task uuid)
	RETURNS uuid[]
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN (SELECT coalesce(array_agg(d.depends_on ORDER BY d.depends_on), '{}')
			  FROM agent_tasks_internal.task_dependencies d
			  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
			 WHERE d.account = unfinished_blockers.account AND d.task_id = unfinished_blockers.task
			   AND b.status <> 'completed');
END
$$;

-- Process the children of a command-mode parent (locked by the caller) that
-- are not running: as process_task() would one by one, but set-wise, so
-- that N items cost N rows, not N statements.
CREATE FUNCTION agent_tasks_internal.process_children(parent agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids uuid[];
	parents uuid[];
	blocked record;
	child uuid;
BEGIN
	SELECT array_agg(x.id ORDER BY x.id) INTO ids
	  FROM (SELECT c.id FROM agent_tasks_internal.tasks c
			 WHERE c.account = parent.account AND c.parent_id = parent.id
			   AND c.status IN ('pending', 'on_hold', 'failed', 'cancelled')
			   FOR UPDATE) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;

	SELECT d.task_id, array_agg(d.depends_on ORDER BY d.depends_on) AS blockers INTO blocked
	  FROM agent_tasks_internal.task_dependencies d
	  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
	 WHERE d.account = parent.account AND d.task_id = ANY (ids) AND b.status <> 'completed'
	 GROUP BY d.task_id ORDER BY d.task_id LIMIT 1;
	IF FOUND THEN
		PERFORM agent_tasks_internal.raise('PT409', 'task is blocked by unfinished dependencies',
			format('task %s waits for %s', blocked.task_id, array_to_string(blocked.blockers, ', ')),
			'It is queued automatically when they complete; or remove them with agent_tasks.remove_dependency().');
	END IF;

	-- Held with their run: the run resumes.
	UPDATE agent_tasks_internal.runs r
	   SET status = 'queued', status_reason = 'resumed', due_at = now(), ended_at = NULL,
		   lease_expires_at = NULL
	  FROM agent_tasks_internal.tasks c
	 WHERE c.account = parent.account AND c.id = ANY (ids) AND c.status = 'on_hold'
	   AND r.account = c.account AND r.id = c.latest_run_id AND r.status = 'on_hold';

	-- Any other gets a new run; children that are parents themselves go
	-- through process_task.
	SELECT coalesce(array_agg(DISTINCT g.parent_id ORDER BY g.parent_id), '{}') INTO parents
	  FROM agent_tasks_internal.tasks g
	 WHERE g.account = parent.account AND g.parent_id = ANY (ids);
	INSERT INTO agent_tasks_internal.runs
		(account, id, task_id, agent_id, kind, attempt, status_reason, priority, due_at)
	SELECT c.account, agent_tasks.uuid_v7(), c.id, c.agent_id, coalesce(a.kind, 'external'), 1,
		   CASE WHEN c.status IN ('pending', 'on_hold') THEN 'user_request' ELSE 'follow_up' END,
		   c.priority, greatest(coalesce(c.run_after, now()), now())
	  FROM agent_tasks_internal.tasks c
	  LEFT JOIN agent_tasks_internal.agents a ON a.account = c.account AND a.id = c.agent_id
	 WHERE c.account = parent.account AND c.id = ANY (ids)
	   AND c.status IN ('pending', 'on_hold', 'failed', 'cancelled')
	   AND c.id <> ALL (parents)
	 ORDER BY c.id;

	FOREACH child IN ARRAY parents
	LOOP
		PERFORM agent_tasks.process_task(child);
	END LOOP;
END
$$;

CREATE FUNCTION agent_tasks.process_task(task uuid, message text DEFAULT NULL, files jsonb DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	blockers uuid[];
	input jsonb;
	command_parent boolean := false;
BEGIN
	-- Files with content or a url become artifacts; the run keeps references (86_artifacts.sql).
	files := agent_tasks_internal.store_files(t, files);
	PERFORM agent_tasks_internal.check_json('files', files, 'array', 1048576);
	input := jsonb_strip_nulls(jsonb_build_object('message', message, 'files', files));
	IF message IS NOT NULL THEN
		PERFORM agent_tasks.send_message(task, message, 'user', jsonb_strip_nulls(jsonb_build_object('files', files)));
		t := agent_tasks_internal.lock_task(task);
	END IF;

	-- Command mode: the parent runs through its children.  Asked apart, so
	-- that a plain task's check runs no query.
	IF t.command IS NOT NULL THEN
		command_parent := EXISTS (SELECT 1 FROM agent_tasks_internal.tasks c
								   WHERE c.account = t.account AND c.parent_id = t.id);
	END IF;
	IF command_parent THEN
		PERFORM agent_tasks_internal.process_children(t);
		IF t.status <> 'queued' AND t.status <> 'in_progress' THEN
			UPDATE agent_tasks_internal.tasks
			   SET status = 'queued', status_reason = 'user_request', output = NULL, error = NULL,
				   updated_at = now()
			 WHERE account = t.account AND id = t.id;
		END IF;
		RETURN agent_tasks.get_task(task);
	END IF;

	CASE t.status
		WHEN 'queued', 'in_progress' THEN
			NULL;				-- already running: the message (if any) is its follow-up
		WHEN 'on_hold', 'needs_clarification' THEN
			IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.runs r
							WHERE r.account = t.account AND r.id = t.latest_run_id AND r.status = t.status) THEN
				PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after, 'user_request', input);
			ELSE
				PERFORM agent_tasks_internal.move_task(t, 'queued',
					CASE t.status WHEN 'on_hold' THEN 'resumed' ELSE 'clarified' END);
			END IF;
		ELSE
			blockers := agent_tasks_internal.unfinished_blockers(t.account, t.id);
			IF cardinality(blockers) > 0 THEN
				PERFORM agent_tasks_internal.raise('PT409', 'task is blocked by unfinished dependencies',
					format('task %s waits for %s', t.id, array_to_string(blockers, ', ')),
					'It is queued automatically when they complete; or remove them with agent_tasks.remove_dependency().');
			END IF;
			PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after,
				CASE WHEN t.status = 'pending' THEN 'user_request' ELSE 'follow_up' END, input);
	END CASE;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.process_task(uuid, text, jsonb) IS 'Queue a run of the task; resumes it from on_hold or needs_clarification, or starts a follow-up run after a finished one. The message (if any) joins the conversation; files are passed to the run.';

CREATE FUNCTION agent_tasks.stop_task(task uuid, reason text DEFAULT 'user_request')
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	child uuid;
BEGIN
	PERFORM agent_tasks_internal.check_text('reason', reason, 200, true);
	IF t.status <> 'on_hold' THEN
		FOR child IN SELECT c.id FROM agent_tasks_internal.tasks c
					  WHERE c.account = t.account AND c.parent_id = t.id
						AND c.status IN ('pending', 'queued', 'in_progress', 'needs_clarification')
					  ORDER BY c.id
		LOOP
			PERFORM agent_tasks.stop_task(child, reason);
		END LOOP;
		PERFORM agent_tasks_internal.move_task(t, 'on_hold', reason);
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.stop_task(uuid, text) IS 'Put the task on hold (its queued or running run stops); process_task resumes it. Stopping a task on hold does nothing; a finished task cannot be stopped (PT409).';

CREATE FUNCTION agent_tasks.cancel_task(task uuid, reason text DEFAULT 'user_request')
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	child uuid;
BEGIN
	PERFORM agent_tasks_internal.check_text('reason', reason, 200, true);
	IF t.status = 'cancelled' THEN
		RETURN agent_tasks.get_task(task);		-- idempotent
	END IF;
	-- The parent first, so that its children's endings do not complete it.
	PERFORM agent_tasks_internal.move_task(t, 'cancelled', reason);
	FOR child IN SELECT c.id FROM agent_tasks_internal.tasks c
				  WHERE c.account = t.account AND c.parent_id = t.id
					AND agent_tasks.status_kind(c.status) <> 'terminal'
				  ORDER BY c.id
	LOOP
		PERFORM agent_tasks.cancel_task(child, 'parent_cancelled');
	END LOOP;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.cancel_task(uuid, text) IS 'Cancel the task, its running run and its open children. Idempotent: cancelling a cancelled task returns it unchanged; a completed or failed task cannot be cancelled (PT409).';

CREATE FUNCTION agent_tasks.retry_task(task uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF agent_tasks.status_kind(t.status) <> 'terminal' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'only a finished task can be retried',
			format('task %s is %s', t.id, t.status),
			'Wait for it to finish, or stop_task / cancel_task it first.');
	END IF;
	RETURN agent_tasks.process_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.retry_task(uuid) IS 'Start a new run of a completed, failed or cancelled task (PT409 for a task that is not finished).';

-- For external agents and tests: drive the state machine directly.
CREATE FUNCTION agent_tasks.set_task_status(task uuid, status text, reason text DEFAULT NULL,
	output jsonb DEFAULT NULL, error jsonb DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF set_task_status.status = 'queued' AND agent_tasks.status_kind(t.status) IN ('idle', 'terminal') THEN
		PERFORM agent_tasks_internal.queue_run(t, 1, now(), coalesce(reason, 'user_request'));
	ELSE
		PERFORM agent_tasks_internal.move_task(t, set_task_status.status, reason, error, output);
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb) IS 'Privileged (agent_tasks_worker): move a task (its latest run) to a status, checked by the state machine like every other change.';
