-- Storage.  Every key leads with "account" so that tables can be
-- distributed and co-located by account (e.g. with Citus); row-level
-- security keeps accounts apart.

CREATE TABLE agent_tasks_internal.users (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	email		text NOT NULL CHECK (email = lower(email) AND length(email) <= 320),
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	UNIQUE (account, email)
);

CREATE TABLE agent_tasks_internal.agents (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name			text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	kind			text NOT NULL CHECK (kind IN ('sql', 'http', 'openai', 'external')),
	target			text,
	config			jsonb NOT NULL DEFAULT '{}',
	concurrency		integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 10000),
	timeout			interval NOT NULL DEFAULT '5 minutes' CHECK (timeout > '0' AND timeout <= '1 day'),
	max_attempts	integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
	backoff_base	interval NOT NULL DEFAULT '1 second' CHECK (backoff_base >= '0'),
	backoff_max		interval NOT NULL DEFAULT '5 minutes' CHECK (backoff_max >= backoff_base),
	budget_tokens	bigint CHECK (budget_tokens > 0),
	budget_cost		numeric CHECK (budget_cost > 0),
	run_as			name NOT NULL DEFAULT current_user,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);

-- The tokens and cost an agent's runs used, in shards: a run takes the
-- first shard no other transaction holds (record_usage), so runs of one
-- agent finishing at once do not wait for each other's commit.  The
-- agent's use is the sum of its shards.
CREATE TABLE agent_tasks_internal.agent_usage (
	account			text NOT NULL,
	agent_id		uuid NOT NULL,
	shard			smallint NOT NULL,
	tokens			bigint NOT NULL DEFAULT 0,
	cost			numeric NOT NULL DEFAULT 0,
	PRIMARY KEY (account, agent_id, shard),
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE CASCADE
);

CREATE TABLE agent_tasks_internal.tasks (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	parent_id		uuid,
	title			text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
	prompt			text CHECK (length(prompt) <= 100000),
	type			text CHECK (length(type) <= 100),
	command			text CHECK (length(command) <= 100),
	item			jsonb,
	context			jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
	agent_id		uuid,
	priority		integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
	output_schema	jsonb CHECK (jsonb_typeof(output_schema) = 'object'),
	owner_id		uuid,
	created_by		text NOT NULL,
	skills			text[] NOT NULL DEFAULT '{}',
	labels			text[] NOT NULL DEFAULT '{}',
	metadata		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
	external_id		text CHECK (length(external_id) <= 200),
	origin			text NOT NULL DEFAULT 'sql' CHECK (length(origin) <= 100),
	idempotency_key	text CHECK (length(idempotency_key) <= 200),
	request_hash	text,
	callback_url	text CHECK (length(callback_url) <= 2000),
	run_after		timestamptz,
	latest_run_id	uuid,
	status			text NOT NULL DEFAULT 'pending',
	status_reason	text,
	output			jsonb,
	error			jsonb,
	feedback		text CHECK (feedback IN ('like', 'dislike')),
	budget_tokens	bigint CHECK (budget_tokens > 0),
	budget_cost		numeric CHECK (budget_cost > 0),
	archived_at		timestamptz,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	search			tsvector,		-- kept by index_task_text (20_triggers.sql)
	-- last, where the upgrade from 0.1.0 adds it
	title_derived	boolean NOT NULL DEFAULT false,
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, parent_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE SET NULL (agent_id),
	FOREIGN KEY (account, owner_id) REFERENCES agent_tasks_internal.users (account, id)
) WITH (fillfactor = 75);
-- No index covers a column that changes at every transition (status,
-- status_reason, latest_run_id, output, error, updated_at), and each page
-- keeps room: a status change is a HOT update that writes no index entry
-- (nor recomputes the search vector of the GIN index: index_task_text).
-- Listing an account's tasks by status walks its tasks newest first.
CREATE INDEX ON agent_tasks_internal.tasks (account, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks (account, agent_id) WHERE agent_id IS NOT NULL;
-- Every secondary index is partial: a task without an owner or an
-- idempotency key (most of them) gets no entry, and a look-up by key can
-- only use the primary key, even while the table is new and unanalyzed
-- (then every index on account looks as cheap as the right one).
CREATE INDEX ON agent_tasks_internal.tasks (account, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency_key ON agent_tasks_internal.tasks (account, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks (account, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks USING gin (search);

CREATE TABLE agent_tasks_internal.task_assignees (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	user_id		uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, user_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, user_id) REFERENCES agent_tasks_internal.users (account, id)
);
CREATE INDEX ON agent_tasks_internal.task_assignees (account, user_id);

CREATE TABLE agent_tasks_internal.task_followers (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	user_id		uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, user_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, user_id) REFERENCES agent_tasks_internal.users (account, id)
);
CREATE INDEX ON agent_tasks_internal.task_followers (account, user_id);

CREATE TABLE agent_tasks_internal.task_dependencies (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	depends_on	uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, depends_on),
	CHECK (task_id <> depends_on),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, depends_on) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.task_dependencies (account, depends_on);

-- One run per attempt at a task.  "kind" is the agent's kind when the run
-- was queued, so that each worker type claims from its own part of the
-- runnable index.
CREATE TABLE agent_tasks_internal.runs (
	account				text NOT NULL,
	id					uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id				uuid NOT NULL,
	agent_id			uuid,
	kind				text NOT NULL DEFAULT 'external' CHECK (kind IN ('sql', 'http', 'openai', 'external')),
	attempt				integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
	status				text NOT NULL DEFAULT 'queued',
	status_reason		text,
	priority			integer NOT NULL DEFAULT 0,
	due_at				timestamptz NOT NULL DEFAULT now(),
	phase				text,
	progress			text,
	progress_data		jsonb,
	worker				text,
	lease_expires_at	timestamptz,
	heartbeat_at		timestamptz,
	queued_at			timestamptz NOT NULL DEFAULT now(),
	started_at			timestamptz,
	ended_at			timestamptz,
	input				jsonb,
	output				jsonb,
	error				jsonb,
	usage				jsonb NOT NULL DEFAULT '{}',
	tokens				bigint NOT NULL DEFAULT 0,
	cost				numeric NOT NULL DEFAULT 0,
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE SET NULL (agent_id)
);
CREATE INDEX ON agent_tasks_internal.runs (account, task_id, id);
-- The queue: each agent's queued runs in claim order (claims read only the
-- agents they can serve), and the few queued runs without an agent.
CREATE INDEX runs_queued ON agent_tasks_internal.runs (account, agent_id, priority DESC, due_at, id)
	WHERE status = 'queued' AND agent_id IS NOT NULL;
CREATE INDEX runs_queued_without_agent ON agent_tasks_internal.runs (kind, account, priority DESC, due_at, id)
	WHERE status = 'queued' AND agent_id IS NULL;
-- Leases to recover, and each agent's runs in progress (its concurrency).
CREATE INDEX runs_leased ON agent_tasks_internal.runs (lease_expires_at)
	WHERE status = 'in_progress';
CREATE INDEX runs_in_progress ON agent_tasks_internal.runs (account, agent_id)
	WHERE status = 'in_progress';

CREATE TABLE agent_tasks_internal.messages (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id		uuid NOT NULL,
	run_id		uuid,
	role		text NOT NULL CHECK (role IN ('user', 'agent', 'system')),
	author		text NOT NULL,
	body		text NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
	data		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.messages (account, task_id, id);

-- The audit trail: written only by the extension's triggers.
CREATE TABLE agent_tasks_internal.activities (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id		uuid NOT NULL,
	run_id		uuid,
	event		text NOT NULL,
	actor		text NOT NULL,
	from_status	text,
	to_status	text,
	reason		text,
	data		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.activities (account, task_id, id);

-- Readers see their account's rows through the views; writers change them
-- through the functions (which run with the caller's rights, so RLS holds).
-- Activities have no write grant at all: only the SECURITY DEFINER trigger
-- functions add to them.
GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks_internal TO agent_tasks_reader;
GRANT INSERT, UPDATE, DELETE ON agent_tasks_internal.tasks, agent_tasks_internal.task_assignees,
	agent_tasks_internal.task_followers, agent_tasks_internal.task_dependencies,
	agent_tasks_internal.messages TO agent_tasks_writer;
-- Writers move runs through the lifecycle; what a run did (usage, progress,
-- lease renewals) is reported by workers only.
GRANT INSERT, DELETE ON agent_tasks_internal.runs TO agent_tasks_writer;
GRANT UPDATE (status, status_reason, error, output, due_at, started_at, worker, ended_at, lease_expires_at)
	ON agent_tasks_internal.runs TO agent_tasks_writer;
GRANT UPDATE ON agent_tasks_internal.runs TO agent_tasks_worker;
GRANT INSERT ON agent_tasks_internal.users TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks_internal.agents TO agent_tasks_admin;
