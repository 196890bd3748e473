-- Schedules (recurring tasks, run by pg_cron) and the maintenance job.
--
-- agent_tasks does not require pg_cron: these functions look for pg_cron's
-- API when they are called, and fail with PT409 and the hint
-- "CREATE EXTENSION pg_cron" when it is missing.  Everything else works
-- without it, and so does run_maintenance() when called by hand.
--
-- A schedule is a row here plus one pg_cron job named "agent_tasks:<id>"
-- whose command is
--     SELECT agent_tasks_internal.fire_schedule('<account>', '<id>')
-- The job belongs to the extension's owner (a superuser): pg_cron runs a
-- job as the role that scheduled it, by logging in as that role, and the API
-- roles cannot log in.  fire_schedule() therefore switches to the role
-- agent_tasks_writer and to the schedule's account and user before it
-- creates the task, so that row-level security and the account's rate
-- limit apply to scheduled tasks as to any other.  The template is stored
-- here and never becomes part of the command.
--
-- pg_cron must run in this database (cron.database_name); pg_cron 1.4
-- evaluates schedules in GMT (later versions: the setting cron.timezone, which
-- next_run_at follows when it exists).

-- ---------------------------------------------------------------------------
-- Cron expressions: parsed here to refuse bad ones early (PT400) and to
-- compute the next run (pg_cron has no function for it).

-- One field: '*', 'n', 'a-b', with '/step', comma lists; names for months
-- and days of week.  Returns the sorted values.
CREATE FUNCTION agent_tasks_internal.cron_field(expr text, field text, lo integer, hi integer,
	names text[] DEFAULT NULL)
	RETURNS integer[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	item text;
	m text[];
	a integer;
	b integer;
	step integer;
	result integer[] := '{}';
	v text := lower(field);
	i integer;
BEGIN
	IF names IS NOT NULL THEN
		FOR i IN 1 .. cardinality(names) LOOP
			v := regexp_replace(v, '\m' || names[i] || '\M', (lo + i - 1)::text, 'g');
		END LOOP;
	END IF;
	FOREACH item IN ARRAY string_to_array(v, ',') LOOP
		m := regexp_match(item, '^(\*|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?$');
		IF m IS NULL THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
				format('%s: cannot read %s', quote_literal(expr), quote_literal(item)),
				'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *'', or @hourly, @daily, @weekly, @monthly, @yearly.');
		END IF;
		IF m[1] = '*' THEN
			a := lo; b := hi;
		ELSE
			a := m[2]::integer;
			b := coalesce(m[3]::integer, CASE WHEN m[4] IS NOT NULL THEN hi ELSE a END);
		END IF;
		step := coalesce(m[4]::integer, 1);
		IF a < lo OR b > hi OR a > b OR step < 1 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
				format('%s: %s is out of range %s-%s', quote_literal(expr), quote_literal(item), lo, hi),
				'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *''.');
		END IF;
		result := result || ARRAY(SELECT generate_series(a, b, step));
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT x FROM unnest(result) x ORDER BY x);
END
$$;

-- The parsed schedule: minutes, hours, days of month, months, days of week
-- (0 = Sunday), and whether day-of-month / day-of-week were '*' (cron
-- matches either day field when both are restricted).
CREATE FUNCTION agent_tasks_internal.cron_parse(expr text,
	OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[],
	OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean)
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e text := lower(btrim(coalesce(expr, '')));
	f text[];
BEGIN
	e := CASE e WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
				WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
				WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
				WHEN '@hourly' THEN '0 * * * *' ELSE e END;
	f := regexp_split_to_array(e, '\s+');
	IF cardinality(f) <> 5 OR length(e) > 200 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
			format('%s has %s fields; cron needs 5.', quote_literal(left(expr, 200)), cardinality(f)),
			'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *'', or @hourly, @daily, @weekly, @monthly, @yearly.');
	END IF;
	minutes := agent_tasks_internal.cron_field(expr, f[1], 0, 59);
	hours := agent_tasks_internal.cron_field(expr, f[2], 0, 23);
	days := agent_tasks_internal.cron_field(expr, f[3], 1, 31);
	months := agent_tasks_internal.cron_field(expr, f[4], 1, 12,
		'{jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec}');
	weekdays := agent_tasks_internal.cron_field(expr, f[5], 0, 7, '{sun,mon,tue,wed,thu,fri,sat}');
	IF 7 = ANY (weekdays) THEN
		weekdays := ARRAY(SELECT DISTINCT x % 7 FROM unnest(weekdays) x ORDER BY 1);
	END IF;
	any_day := f[3] LIKE '*%';
	any_weekday := f[5] LIKE '*%';
END
$$;

-- The first time after "after" that the expression fires, in the time zone
-- pg_cron uses (NULL when none within five years, e.g. '0 0 31 2 *').
CREATE FUNCTION agent_tasks_internal.cron_next(expr text, after timestamptz DEFAULT now())
	RETURNS timestamptz
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record := agent_tasks_internal.cron_parse(expr);
	tz text := coalesce(nullif(current_setting('cron.timezone', true), ''), 'GMT');
	t timestamp := date_trunc('minute', after AT TIME ZONE tz) + interval '1 minute';
	d date := t::date;
	first_minute integer;
	h integer;
	m integer;
	day_ok boolean;
BEGIN
	FOR i IN 1 .. 5 * 366 LOOP
		IF extract(month FROM d)::integer = ANY (c.months) THEN
			day_ok := CASE WHEN c.any_day OR c.any_weekday
						   THEN extract(day FROM d)::integer = ANY (c.days)
								AND extract(dow FROM d)::integer = ANY (c.weekdays)
						   ELSE extract(day FROM d)::integer = ANY (c.days)
								OR extract(dow FROM d)::integer = ANY (c.weekdays) END;
			IF day_ok THEN
				first_minute := CASE WHEN d = t::date THEN extract(hour FROM t) * 60 + extract(minute FROM t) ELSE 0 END;
				FOREACH h IN ARRAY c.hours LOOP
					CONTINUE WHEN h * 60 + 59 < first_minute;
					FOREACH m IN ARRAY c.minutes LOOP
						IF h * 60 + m >= first_minute THEN
							RETURN (d + make_time(h, m, 0)) AT TIME ZONE tz;
						END IF;
					END LOOP;
				END LOOP;
			END IF;
			d := d + 1;
		ELSE
			d := (date_trunc('month', d) + interval '1 month')::date;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;

-- pg_cron's API, or PT409 with the fix.
CREATE FUNCTION agent_tasks_internal.require_pg_cron()
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF to_regprocedure('cron.schedule(text,text,text)') IS NULL
		OR to_regprocedure('cron.unschedule(bigint)') IS NULL OR to_regclass('cron.job') IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT409', 'pg_cron is not installed in this database',
			format('Schedules and the maintenance job run as pg_cron jobs; database %s has no pg_cron.',
				   quote_ident(current_database())),
			'CREATE EXTENSION pg_cron (it must be in shared_preload_libraries, with cron.database_name naming this database).');
	END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Schedules

CREATE TABLE agent_tasks_internal.schedules (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name			text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	cron			text NOT NULL,
	template		jsonb NOT NULL CHECK (jsonb_typeof(template) = 'object'),
	user_email		text,
	job_name		text NOT NULL,
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	last_fired_at	timestamptz,
	last_task_id	uuid,
	fire_count		bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);
-- Written by the SECURITY DEFINER functions below; read through the view.
GRANT SELECT ON agent_tasks_internal.schedules TO agent_tasks_reader;

-- What a template may hold: the parameters of create_task that make sense
-- for a recurring task.
CREATE TYPE agent_tasks_internal.task_template AS (
	title			text,
	prompt			text,
	type			text,
	command			text,
	items			jsonb,
	context			jsonb,
	agent			text,
	priority		integer,
	output_schema	jsonb,
	owner			text,
	assignees		text[],
	followers		text[],
	skills			text[],
	labels			text[],
	metadata		jsonb,
	external_id		text,
	origin			text,
	callback_url	text,
	budget_tokens	bigint,
	budget_cost		numeric,
	auto_process	boolean
);

CREATE FUNCTION agent_tasks_internal.read_template(template jsonb)
	RETURNS agent_tasks_internal.task_template
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	unknown text;
	r agent_tasks_internal.task_template;
BEGIN
	IF template IS NULL OR jsonb_typeof(template) <> 'object' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'template must be a JSON object',
			format('template = %s', left(coalesce(template::text, 'null'), 200)),
			'Pass the parameters of create_task, e.g. {"title": "Weekly report", "auto_process": true}.');
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
	  FROM jsonb_object_keys(template) k
	 WHERE k NOT IN (SELECT a.attname FROM pg_attribute a
					  WHERE a.attrelid = 'agent_tasks_internal.task_template'::regclass AND a.attnum > 0);
	IF unknown IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'unknown template fields',
			format('template has %s', unknown),
			'Use title, prompt, type, command, items, context, agent, priority, output_schema, owner, assignees, followers, skills, labels, metadata, external_id, origin, callback_url, budget_tokens, budget_cost, auto_process.');
	END IF;
	BEGIN
		r := jsonb_populate_record(NULL::agent_tasks_internal.task_template, template);
	EXCEPTION WHEN data_exception OR invalid_text_representation OR datatype_mismatch THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid template',
			format('%s (template %s)', SQLERRM, left(template::text, 200)),
			'Give each field the type create_task takes (text, integer, boolean, arrays of text, JSON objects).');
	END;
	RETURN r;
END
$$;

-- Create a task from a template, as the current account and user.
CREATE FUNCTION agent_tasks_internal.create_from_template(template jsonb, auto_process boolean DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.task_template := agent_tasks_internal.read_template(template);
BEGIN
	RETURN agent_tasks.create_task(
		title => r.title, prompt => r.prompt, type => r.type, command => r.command, items => r.items,
		context => coalesce(r.context, '{}'), agent => r.agent, priority => coalesce(r.priority, 0),
		output_schema => r.output_schema, owner => r.owner, assignees => coalesce(r.assignees, '{}'),
		followers => coalesce(r.followers, '{}'), skills => coalesce(r.skills, '{}'),
		labels => coalesce(r.labels, '{}'), metadata => coalesce(r.metadata, '{}'),
		external_id => r.external_id, origin => coalesce(r.origin, 'schedule'),
		callback_url => r.callback_url, budget_tokens => r.budget_tokens, budget_cost => r.budget_cost,
		auto_process => coalesce(create_from_template.auto_process, r.auto_process, false));
END
$$;

-- The pg_cron job of a schedule, for the view.  SECURITY DEFINER: pg_cron's
-- tables show each role its own jobs only, and the jobs belong to the
-- extension's owner.  Answers for the current account's schedules only.
CREATE FUNCTION agent_tasks_internal.schedule_job(account text, job_name text,
	OUT jobid bigint, OUT active boolean, OUT last_run_at timestamptz, OUT last_status text,
	OUT last_message text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- only the jobs of this account's schedules: pg_cron shows others to their owners alone
	IF to_regclass('cron.job') IS NULL OR schedule_job.account IS DISTINCT FROM agent_tasks.current_account()
		OR NOT EXISTS (SELECT 1 FROM agent_tasks_internal.schedules s
						WHERE s.account = schedule_job.account AND s.job_name = schedule_job.job_name) THEN
		RETURN;
	END IF;
	EXECUTE 'SELECT j.jobid, j.active FROM cron.job j WHERE j.jobname = $1 ORDER BY j.jobid LIMIT 1'
	   INTO jobid, active USING schedule_job.job_name;
	IF jobid IS NOT NULL AND to_regclass('cron.job_run_details') IS NOT NULL THEN
		EXECUTE 'SELECT d.start_time, d.status, d.return_message FROM cron.job_run_details d
				  WHERE d.jobid = $1 ORDER BY d.runid DESC LIMIT 1'
		   INTO last_run_at, last_status, last_message USING jobid;
	END IF;
END
$$;

CREATE VIEW agent_tasks.schedules WITH (security_invoker = true) AS
SELECT s.id, s.account, s.name, s.cron, s.template, s.user_email AS email, s.created_by,
	   s.created_at, s.updated_at, s.job_name, j.jobid, coalesce(j.active, false) AS active,
	   CASE WHEN j.active THEN agent_tasks_internal.cron_next(s.cron) END AS next_run_at,
	   coalesce(j.last_run_at, s.last_fired_at) AS last_run_at, j.last_status, j.last_message,
	   s.last_fired_at, s.last_task_id, s.fire_count
  FROM agent_tasks_internal.schedules s
  LEFT JOIN LATERAL agent_tasks_internal.schedule_job(s.account, s.job_name) j ON true;
COMMENT ON VIEW agent_tasks.schedules IS 'Recurring tasks of the current account: each is a pg_cron job that creates (and, with auto_process, queues) a task from its template.';
COMMENT ON COLUMN agent_tasks.schedules.cron IS 'Five-field cron expression (or @hourly, @daily, @weekly, @monthly, @yearly), evaluated by pg_cron in GMT (pg_cron 1.4; cron.timezone in later versions).';
COMMENT ON COLUMN agent_tasks.schedules.template IS 'The parameters of create_task for each new task (title, prompt, type, context, agent, labels, ..., auto_process).';
COMMENT ON COLUMN agent_tasks.schedules.email IS 'The person the tasks are created as (owner and actor), if any.';
COMMENT ON COLUMN agent_tasks.schedules.job_name IS 'Name of the pg_cron job (cron.job.jobname).';
COMMENT ON COLUMN agent_tasks.schedules.active IS 'True while the pg_cron job exists and is active.';
COMMENT ON COLUMN agent_tasks.schedules.next_run_at IS 'Next time the job fires, computed from the cron expression (pg_cron has no function for it).';
COMMENT ON COLUMN agent_tasks.schedules.last_run_at IS 'Start of the last run of the job (pg_cron''s cron.job_run_details), else the last time it created a task.';
COMMENT ON COLUMN agent_tasks.schedules.last_status IS 'Status of the last run according to pg_cron: starting, running, sending, connecting, succeeded or failed.';
COMMENT ON COLUMN agent_tasks.schedules.last_message IS 'What the last run returned, or its error.';
COMMENT ON COLUMN agent_tasks.schedules.last_task_id IS 'The task the last successful run created.';
COMMENT ON COLUMN agent_tasks.schedules.fire_count IS 'How many tasks the schedule has created.';

-- The job's command.  Runs as the job's owner (the extension's owner);
-- switches to agent_tasks_writer and to the schedule's account and user for
-- the task itself.
CREATE FUNCTION agent_tasks_internal.fire_schedule(account text, schedule uuid)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s agent_tasks_internal.schedules;
	t agent_tasks.tasks;
BEGIN
	SELECT * INTO s FROM agent_tasks_internal.schedules x
	 WHERE x.account = fire_schedule.account AND x.id = fire_schedule.schedule;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'schedule not found',
			format('No schedule %s in account %s; its pg_cron job outlived it.', schedule, quote_literal(account)),
			format('SELECT cron.unschedule(%L);', 'agent_tasks:' || schedule));
	END IF;
	PERFORM set_config('request.jwt.claims', '', true);
	PERFORM set_config('agent_tasks.account', s.account, true);
	PERFORM set_config('agent_tasks.email', coalesce(s.user_email, ''), true);
	PERFORM set_config('agent_tasks.user', '', true);
	PERFORM set_config('role', 'agent_tasks_writer', true);
	t := agent_tasks_internal.create_from_template(s.template);
	PERFORM set_config('role', 'none', true);
	UPDATE agent_tasks_internal.schedules x
	   SET last_fired_at = now(), last_task_id = t.id, fire_count = x.fire_count + 1
	 WHERE x.account = s.account AND x.id = s.id;
	RETURN t.id;
END
$$;

CREATE FUNCTION agent_tasks.schedule_task(name text, cron text, template jsonb)
	RETURNS agent_tasks.schedules
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	s agent_tasks_internal.schedules;
	result agent_tasks.schedules;
BEGIN
	s.name := btrim(agent_tasks_internal.check_text('name', schedule_task.name, 200, true));
	PERFORM agent_tasks_internal.cron_parse(schedule_task.cron);
	PERFORM agent_tasks_internal.read_template(schedule_task.template);
	PERFORM agent_tasks_internal.check_json('template', schedule_task.template, 'object', 65536);
	PERFORM agent_tasks_internal.require_pg_cron();

	-- Try the template once (rolled back, not queued) so that a bad agent,
	-- owner or field fails now rather than at every tick.
	BEGIN
		PERFORM agent_tasks_internal.create_from_template(schedule_task.template, false);
		RAISE EXCEPTION USING ERRCODE = 'PTDRY', MESSAGE = 'dry run';
	EXCEPTION WHEN SQLSTATE 'PTDRY' THEN
		NULL;
	END;

	INSERT INTO agent_tasks_internal.schedules AS x
		(account, id, name, cron, template, user_email, job_name, created_by)
	VALUES (acct, agent_tasks.uuid_v7(), s.name, btrim(schedule_task.cron), schedule_task.template,
			agent_tasks.current_user_email(), '', agent_tasks_internal.current_actor())
	ON CONFLICT ON CONSTRAINT schedules_account_name_key DO UPDATE
	   SET cron = excluded.cron, template = excluded.template, user_email = excluded.user_email,
		   updated_at = now()
	RETURNING * INTO s;
	IF s.job_name = '' THEN
		s.job_name := 'agent_tasks:' || s.id;
		UPDATE agent_tasks_internal.schedules x SET job_name = s.job_name
		 WHERE x.account = s.account AND x.id = s.id;
	END IF;
	BEGIN
		EXECUTE 'SELECT cron.schedule($1, $2, $3)'
		  USING s.job_name, s.cron,
				format('SELECT agent_tasks_internal.fire_schedule(%L, %L)', s.account, s.id);
	EXCEPTION WHEN OTHERS THEN
		PERFORM agent_tasks_internal.raise('PT400', 'pg_cron refused the schedule',
			format('%s (cron %s)', SQLERRM, quote_literal(s.cron)),
			'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *''.');
	END;
	SELECT * INTO result FROM agent_tasks.schedules v WHERE v.account = s.account AND v.id = s.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.schedule_task(text, text, jsonb) IS 'Create or replace the schedule "name": a pg_cron job that creates a task from the template (the parameters of create_task; auto_process queues it) at every tick of the cron expression, as you and in your account. Needs pg_cron (PT409 otherwise).';

CREATE FUNCTION agent_tasks.unschedule_task(name text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s agent_tasks_internal.schedules;
BEGIN
	PERFORM agent_tasks_internal.require_pg_cron();
	DELETE FROM agent_tasks_internal.schedules x
	 WHERE x.account = agent_tasks.current_account() AND x.name = unschedule_task.name
	RETURNING * INTO s;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'schedule not found',
			format('No schedule named %s in this account.', coalesce(quote_literal(unschedule_task.name), 'null')),
			'List them in agent_tasks.schedules.');
	END IF;
	IF agent_tasks_internal.schedule_job_exists(s.job_name) THEN
		EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobname = $1' USING s.job_name;
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.unschedule_task(text) IS 'Delete the schedule "name" and its pg_cron job; tasks it created stay. PT404 when there is no such schedule.';

CREATE FUNCTION agent_tasks_internal.schedule_job_exists(job_name text)
	RETURNS boolean
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found boolean;
BEGIN
	IF to_regclass('cron.job') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname = $1)' INTO found USING job_name;
	RETURN found;
END
$$;

-- ---------------------------------------------------------------------------
-- Maintenance: retention and the queue's indexes.  For the database
-- administrator: granted to no API role (it spans every account).

CREATE FUNCTION agent_tasks.run_maintenance()
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	archived interval := agent_tasks_internal.setting_seconds('agent_tasks.retention_archived', 30 * 86400);
	deliveries interval := agent_tasks_internal.setting_seconds('agent_tasks.retention_deliveries', 30 * 86400);
	result jsonb := '{}';
	n bigint;
	t text;
	status_filter text;
	idx regclass;
	tbl regclass;
	time_column name;
	live bigint;
	pred text;
	old_lock_timeout text := current_setting('lock_timeout');
BEGIN
	IF archived >= interval '0' THEN
		DELETE FROM agent_tasks_internal.tasks t WHERE t.archived_at < now() - archived;
		GET DIAGNOSTICS n = ROW_COUNT;
		result := result || jsonb_build_object('archived_tasks_deleted', n);
	END IF;

	-- Webhook attempts and deliveries (85_webhooks.sql), found at run time:
	-- finished ones only, by their creation (or start) time.
	IF deliveries >= interval '0' THEN
		FOREACH t IN ARRAY ARRAY['webhook_attempts', 'webhook_deliveries'] LOOP
			tbl := to_regclass('agent_tasks_internal.' || t);
			CONTINUE WHEN tbl IS NULL;
			SELECT a.attname INTO time_column FROM pg_attribute a
			 WHERE a.attrelid = tbl AND a.attname IN ('created_at', 'started_at') AND NOT a.attisdropped
			 ORDER BY a.attname = 'created_at' DESC LIMIT 1;
			CONTINUE WHEN time_column IS NULL;
			status_filter := CASE WHEN EXISTS (
					SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'status' AND NOT a.attisdropped)
				THEN ' AND status NOT IN (''pending'', ''queued'', ''in_progress'', ''in_flight'', ''sending'', ''retrying'')'
				ELSE '' END;
			EXECUTE format('DELETE FROM %s WHERE %I < $1%s', tbl, time_column, status_filter)
			  USING now() - deliveries;
			GET DIAGNOSTICS n = ROW_COUNT;
			result := result || jsonb_build_object(t || '_deleted', n);
		END LOOP;
	END IF;

	DELETE FROM agent_tasks_internal.presence p WHERE p.expires_at < now();
	GET DIAGNOSTICS n = ROW_COUNT;
	result := result || jsonb_build_object('presence_expired', n);

	DELETE FROM agent_tasks_internal.rate_counters c WHERE c.window_end < now();
	GET DIAGNOSTICS n = ROW_COUNT;
	result := result || jsonb_build_object('rate_counters_deleted', n);

	-- pg_cron keeps a row per run: keep a week of the extension's jobs.
	IF to_regclass('cron.job_run_details') IS NOT NULL THEN
		EXECUTE 'DELETE FROM cron.job_run_details d
				  WHERE d.end_time < now() - interval ''7 days''
					AND d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname LIKE ''agent\_tasks:%'')';
		GET DIAGNOSTICS n = ROW_COUNT;
		result := result || jsonb_build_object('cron_run_details_deleted', n);
	END IF;

	-- The queue's partial indexes hold few live entries but churn: rebuild
	-- one when it is four times larger than its live entries need (and over
	-- 1 MB).  A plain REINDEX of a small index is quick; it waits at most
	-- a second for its lock and is skipped otherwise.
	result := result || jsonb_build_object('reindexed', '[]'::jsonb);
	FOR idx IN SELECT i.indexrelid::regclass FROM pg_index i
				WHERE i.indrelid = 'agent_tasks_internal.runs'::regclass AND i.indpred IS NOT NULL
	LOOP
		CONTINUE WHEN pg_relation_size(idx) < 1024 * 1024;
		pred := pg_get_expr((SELECT i.indpred FROM pg_index i WHERE i.indexrelid = idx), 'agent_tasks_internal.runs'::regclass);
		EXECUTE format('SELECT count(*) FROM agent_tasks_internal.runs WHERE %s', pred) INTO live;
		CONTINUE WHEN pg_relation_size(idx) < 4 * greatest(live * 64, 8192);
		BEGIN
			PERFORM set_config('lock_timeout', '1s', true);
			EXECUTE format('REINDEX INDEX %s', idx);
			result := jsonb_set(result, '{reindexed}', (result -> 'reindexed') || to_jsonb(idx::text));
		EXCEPTION WHEN lock_not_available THEN
			RAISE NOTICE 'agent_tasks maintenance: % is busy, not reindexed', idx;
		END;
		PERFORM set_config('lock_timeout', old_lock_timeout, true);
	END LOOP;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.run_maintenance() IS 'For the database administrator (all accounts): delete archived tasks older than agent_tasks.retention_archived, finished webhook deliveries and attempts older than agent_tasks.retention_deliveries, expired presence, old rate-limit windows and a week''s pg_cron run details of the extension''s jobs, and rebuild bloated queue indexes. Returns what it did.';

CREATE FUNCTION agent_tasks.install_maintenance(schedule text DEFAULT '17 3 * * *')
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	jobid bigint;
BEGIN
	PERFORM agent_tasks_internal.cron_parse(schedule);
	PERFORM agent_tasks_internal.require_pg_cron();
	EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid
	  USING 'agent_tasks:maintenance', btrim(schedule), 'SELECT agent_tasks.run_maintenance()';
	RETURN jobid;
END
$$;
COMMENT ON FUNCTION agent_tasks.install_maintenance(text) IS 'For the database administrator: schedule agent_tasks.run_maintenance() with pg_cron (job "agent_tasks:maintenance", default daily at 03:17 GMT; calling it again changes the schedule). Returns the job id. Needs pg_cron (PT409 otherwise).';

CREATE FUNCTION agent_tasks.uninstall_maintenance()
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.require_pg_cron();
	IF NOT agent_tasks_internal.schedule_job_exists('agent_tasks:maintenance') THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobname = $1' USING 'agent_tasks:maintenance';
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.uninstall_maintenance() IS 'For the database administrator: remove the maintenance job; false when it was not installed.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.schedule_task(text, text, jsonb),
	agent_tasks.unschedule_task(text)
TO agent_tasks_writer;
