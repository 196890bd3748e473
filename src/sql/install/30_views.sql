-- The read side of the public API.  Views run with the caller's rights
-- (security_invoker), so row-level security applies to every read.

CREATE VIEW agent_tasks.tasks WITH (security_invoker = true) AS
SELECT t.id,
	   t.account,
	   t.parent_id,
	   t.title,
	   t.prompt,
	   t.type,
	   t.command,
	   t.item,
	   t.context,
	   t.context ->> 'repository' AS repository,
	   a.name AS agent,
	   t.priority,
	   t.output_schema,
	   o.email AS owner,
	   t.created_by,
	   ARRAY(SELECT u.email
			   FROM agent_tasks_internal.task_assignees ta
			   JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id
			  WHERE ta.account = t.account AND ta.task_id = t.id
			  ORDER BY u.email) AS assignees,
	   ARRAY(SELECT u.email
			   FROM agent_tasks_internal.task_followers tf
			   JOIN agent_tasks_internal.users u ON u.account = tf.account AND u.id = tf.user_id
			  WHERE tf.account = t.account AND tf.task_id = t.id
			  ORDER BY u.email) AS followers,
	   t.skills,
	   t.labels,
	   t.metadata,
	   t.external_id,
	   t.origin,
	   t.idempotency_key,
	   t.callback_url,
	   t.run_after,
	   t.status,
	   t.status_reason,
	   t.latest_run_id,
	   t.output,
	   t.error,
	   t.feedback,
	   t.budget_tokens,
	   t.budget_cost,
	   t.archived_at,
	   t.archived_at IS NOT NULL AS archived,
	   coalesce(o.email = (SELECT agent_tasks.current_user_email()), false) OR EXISTS (
			SELECT 1
			  FROM agent_tasks_internal.task_assignees ta
			  JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id
			 WHERE ta.account = t.account AND ta.task_id = t.id
			   AND u.email = (SELECT agent_tasks.current_user_email())) AS mine,
	   t.created_at,
	   t.updated_at,
	   t.search,
	   t.title_derived,
	   t.prompt AS description
  FROM agent_tasks_internal.tasks t
  LEFT JOIN agent_tasks_internal.agents a ON a.account = t.account AND a.id = t.agent_id
  LEFT JOIN agent_tasks_internal.users o ON o.account = t.account AND o.id = t.owner_id;
COMMENT ON VIEW agent_tasks.tasks IS 'Tasks of the current account, with agent, owner, assignees and followers by name. Filter on status, type, agent, owner, mine, assignees, archived, created_by, repository, origin, external_id, or full-text "search".';
COMMENT ON COLUMN agent_tasks.tasks.prompt IS 'What the agent is asked to do (the description).';
COMMENT ON COLUMN agent_tasks.tasks.status IS 'pending, then the status of the latest run: queued, in_progress, needs_clarification, on_hold, completed, failed or cancelled.';
COMMENT ON COLUMN agent_tasks.tasks.status_reason IS 'Why the task has its status (user_request, blocked, timeout, max_attempts, worker_lost, invalid_output, budget_exceeded, ...).';
COMMENT ON COLUMN agent_tasks.tasks.mine IS 'True when the current user owns the task or is one of its assignees.';
COMMENT ON COLUMN agent_tasks.tasks.search IS 'Full-text document of title and prompt (english), for @@ / PostgREST fts filters.';
COMMENT ON COLUMN agent_tasks.tasks.title_derived IS 'True when no title was given and the server made one: from the first line of the prompt (or the command), for a command item from its parent''s; false once a title is set (PostHog''s title_manually_set, negated).';
COMMENT ON COLUMN agent_tasks.tasks.description IS 'The prompt again, under the name PostHog and AGNT give it: a new row or a change may give either (not both, unless equal).';
COMMENT ON COLUMN agent_tasks.tasks.archived IS 'True once archived (archiving is not a status).';

CREATE VIEW agent_tasks.runs WITH (security_invoker = true) AS
SELECT r.id, r.account, r.task_id, a.name AS agent, r.kind, r.attempt, r.status, r.status_reason,
	   r.priority, r.due_at, r.phase, r.progress, r.progress_data, r.worker, r.lease_expires_at,
	   r.heartbeat_at, r.queued_at, r.started_at, r.ended_at, r.input, r.output, r.error,
	   r.usage, r.tokens, r.cost
  FROM agent_tasks_internal.runs r
  LEFT JOIN agent_tasks_internal.agents a ON a.account = r.account AND a.id = r.agent_id;
COMMENT ON VIEW agent_tasks.runs IS 'Runs (one per attempt at a task) of the current account; terminal runs never change.';

CREATE VIEW agent_tasks.activities WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, event, actor, from_status, to_status, reason, data, created_at
  FROM agent_tasks_internal.activities;
COMMENT ON VIEW agent_tasks.activities IS 'Append-only audit trail of every task: creation, status changes (from, to, actor, reason), updates, people, messages, feedback, archiving.';

CREATE VIEW agent_tasks.messages WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, role, author, body, data, created_at
  FROM agent_tasks_internal.messages;
COMMENT ON VIEW agent_tasks.messages IS 'The conversation of each task: user follow-ups, agent replies, clarification questions and answers.';

CREATE VIEW agent_tasks.agents WITH (security_invoker = true) AS
SELECT id, account, name, kind, target, config, concurrency, timeout, max_attempts,
	   backoff_base, backoff_max, budget_tokens, budget_cost, created_at, updated_at
  FROM agent_tasks_internal.agents;
COMMENT ON VIEW agent_tasks.agents IS 'Agents of the current account: who executes runs, with their kind, target and limits.';

CREATE VIEW agent_tasks.users WITH (security_invoker = true) AS
SELECT id, account, email, created_at
  FROM agent_tasks_internal.users;
COMMENT ON VIEW agent_tasks.users IS 'People of the current account, provisioned on first mention (owner, assignee, follower).';

CREATE VIEW agent_tasks.status_transitions AS
SELECT from_status, to_status, for_task, for_run
  FROM agent_tasks_internal.status_transitions();
COMMENT ON VIEW agent_tasks.status_transitions IS 'The state machine: every allowed status change, for tasks and for runs. Anything else fails with PT409.';
