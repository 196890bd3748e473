-- Artifacts (files attached to a task or a run) and presence (who is
-- watching a task right now).

-- ---------------------------------------------------------------------------
-- Artifacts: bytes stored in the database up to agent_tasks.artifact_max_bytes
-- (default 10 MB), or a URL.  process_task(task, message, files) turns the
-- files it is given into artifacts of the task, linked to the run it queues.

CREATE TABLE agent_tasks_internal.artifacts (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id			uuid NOT NULL,
	run_id			uuid,
	name			text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
	content_type	text NOT NULL CHECK (length(content_type) <= 200),
	size			bigint CHECK (size >= 0),
	sha256			text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	content			bytea,
	url				text CHECK (length(url) <= 2000),
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	CHECK ((content IS NULL) <> (url IS NULL)),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, run_id) REFERENCES agent_tasks_internal.runs (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.artifacts (account, task_id, id);
CREATE INDEX ON agent_tasks_internal.artifacts (account, run_id) WHERE run_id IS NOT NULL;
GRANT SELECT ON agent_tasks_internal.artifacts TO agent_tasks_reader;
GRANT INSERT, DELETE ON agent_tasks_internal.artifacts TO agent_tasks_writer;
GRANT UPDATE (run_id) ON agent_tasks_internal.artifacts TO agent_tasks_writer;

CREATE VIEW agent_tasks.artifacts WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, name, content_type, size, sha256, url,
	   content IS NOT NULL AS stored, created_by, created_at
  FROM agent_tasks_internal.artifacts;
COMMENT ON VIEW agent_tasks.artifacts IS 'Files attached to tasks and runs (without their bytes: fetch_artifact returns those).';
COMMENT ON COLUMN agent_tasks.artifacts.run_id IS 'The run the file belongs to (files given to process_task), or null for a file of the task.';
COMMENT ON COLUMN agent_tasks.artifacts.size IS 'Size in bytes (for a link: as given, if given).';
COMMENT ON COLUMN agent_tasks.artifacts.sha256 IS 'SHA-256 of the bytes, hex (for a link: as given, if given).';
COMMENT ON COLUMN agent_tasks.artifacts.url IS 'Where the file is, for a link; null when the bytes are stored.';
COMMENT ON COLUMN agent_tasks.artifacts.stored IS 'True when the bytes are stored in the database (fetch_artifact returns them).';

-- Store one artifact; every check in one place.
CREATE FUNCTION agent_tasks_internal.insert_artifact(account text, task uuid, run uuid, name text,
	content_type text, content_base64 text, url text, sha256 text DEFAULT NULL, size bigint DEFAULT NULL)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_bytes bigint := agent_tasks_internal.setting_int('agent_tasks.artifact_max_bytes', 10485760);
	b64 text;
	bytes bytea;
	new_id uuid := agent_tasks.uuid_v7();
	digest text;
BEGIN
	PERFORM agent_tasks_internal.check_text('name', insert_artifact.name, 255, true);
	IF insert_artifact.name ~ '[[:cntrl:]]' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid file name',
			format('name = %s', quote_literal(insert_artifact.name)), 'Remove control characters from the name.');
	END IF;
	IF insert_artifact.content_type IS NOT NULL
		AND insert_artifact.content_type !~* '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(\s*;.{0,150})?$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid content type',
			format('content_type = %s', quote_literal(left(insert_artifact.content_type, 200))),
			'Use a media type like text/plain or image/png.');
	END IF;
	IF (insert_artifact.content_base64 IS NULL) = (insert_artifact.url IS NULL) THEN
		PERFORM agent_tasks_internal.raise('PT400', 'a file needs either content or a url',
			format('file %s has %s.', quote_literal(insert_artifact.name),
				   CASE WHEN insert_artifact.url IS NULL THEN 'neither' ELSE 'both' END),
			'Pass content_base64 (the bytes, base64) or url (a link), not both.');
	END IF;
	IF insert_artifact.sha256 IS NOT NULL AND lower(insert_artifact.sha256) !~ '^[0-9a-f]{64}$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid sha256',
			format('sha256 = %s', quote_literal(left(insert_artifact.sha256, 100))), 'Give 64 hexadecimal digits.');
	END IF;

	IF insert_artifact.content_base64 IS NOT NULL THEN
		b64 := translate(regexp_replace(insert_artifact.content_base64, '\s+', '', 'g'), '-_', '+/');
		IF length(b64) / 4 * 3 > max_bytes + 3 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'file is too large',
				format('%s has about %s bytes; the limit is %s (agent_tasks.artifact_max_bytes).',
					   quote_literal(insert_artifact.name), length(b64) / 4 * 3, max_bytes),
				'Attach a link (url) to larger files.');
		END IF;
		b64 := rpad(b64, (length(b64) + 3) / 4 * 4, '=');
		BEGIN
			bytes := decode(b64, 'base64');
		EXCEPTION WHEN invalid_parameter_value OR data_exception THEN
			PERFORM agent_tasks_internal.raise('PT400', 'content_base64 is not base64',
				format('file %s: %s', quote_literal(insert_artifact.name), SQLERRM),
				'Encode the bytes with base64 (standard or URL-safe alphabet).');
		END;
		IF length(bytes) > max_bytes THEN
			PERFORM agent_tasks_internal.raise('PT400', 'file is too large',
				format('%s has %s bytes; the limit is %s (agent_tasks.artifact_max_bytes).',
					   quote_literal(insert_artifact.name), length(bytes), max_bytes),
				'Attach a link (url) to larger files.');
		END IF;
		digest := encode(pg_catalog.sha256(bytes), 'hex');
		IF insert_artifact.sha256 IS NOT NULL AND lower(insert_artifact.sha256) <> digest THEN
			PERFORM agent_tasks_internal.raise('PT422', 'sha256 does not match the content',
				format('file %s: given %s, content has %s', quote_literal(insert_artifact.name),
					   lower(insert_artifact.sha256), digest),
				'Send the file again, or omit sha256.');
		END IF;
		IF insert_artifact.size IS NOT NULL AND insert_artifact.size <> length(bytes) THEN
			PERFORM agent_tasks_internal.raise('PT422', 'size does not match the content',
				format('file %s: given %s bytes, content has %s', quote_literal(insert_artifact.name),
					   insert_artifact.size, length(bytes)),
				'Send the file again, or omit size.');
		END IF;
	ELSE
		PERFORM agent_tasks_internal.check_url('url', insert_artifact.url);
		IF insert_artifact.size < 0 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid size',
				format('size = %s', insert_artifact.size), 'Give the size in bytes, or omit it.');
		END IF;
	END IF;

	INSERT INTO agent_tasks_internal.artifacts
		(account, id, task_id, run_id, name, content_type, size, sha256, content, url, created_by)
	VALUES (insert_artifact.account, new_id, insert_artifact.task, insert_artifact.run, btrim(insert_artifact.name),
			coalesce(lower(insert_artifact.content_type), 'application/octet-stream'),
			coalesce(length(bytes), insert_artifact.size), coalesce(digest, lower(insert_artifact.sha256)),
			bytes, insert_artifact.url, agent_tasks_internal.current_actor());
	RETURN new_id;
END
$$;

CREATE FUNCTION agent_tasks.attach_artifact(task uuid, name text, content_base64 text DEFAULT NULL,
	url text DEFAULT NULL, content_type text DEFAULT NULL, run uuid DEFAULT NULL,
	sha256 text DEFAULT NULL, size bigint DEFAULT NULL)
	RETURNS agent_tasks.artifacts
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	new_id uuid;
	result agent_tasks.artifacts;
BEGIN
	IF attach_artifact.run IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM agent_tasks_internal.runs r
			 WHERE r.account = t.account AND r.id = attach_artifact.run AND r.task_id = t.id) THEN
		PERFORM agent_tasks_internal.raise('PT404', 'run not found',
			format('Task %s has no run %s.', t.id, attach_artifact.run),
			'List the task''s runs in agent_tasks.runs.');
	END IF;
	new_id := agent_tasks_internal.insert_artifact(t.account, t.id, attach_artifact.run, attach_artifact.name,
		attach_artifact.content_type, attach_artifact.content_base64, attach_artifact.url,
		attach_artifact.sha256, attach_artifact.size);
	SELECT * INTO result FROM agent_tasks.artifacts a WHERE a.account = t.account AND a.id = new_id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.attach_artifact(uuid, text, text, text, text, uuid, text, bigint) IS 'Attach a file to a task (or to one of its runs): its bytes as content_base64 (up to agent_tasks.artifact_max_bytes, default 10 MB; sha256 and size are computed, and checked when given: PT422), or a url (with sha256 and size if known).';

-- PostgREST 12 sends a function's result as the raw response body, with any
-- media type, when the function returns a domain named "*/*" (its media type
-- handlers); SQL callers get bytea.
CREATE DOMAIN agent_tasks."*/*" AS bytea;
COMMENT ON DOMAIN agent_tasks."*/*" IS 'bytea that PostgREST sends as the raw response body, with the Content-Type the function sets (fetch_artifact).';

CREATE FUNCTION agent_tasks.fetch_artifact(artifact uuid)
	RETURNS agent_tasks."*/*"
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.artifacts;
BEGIN
	SELECT * INTO a FROM agent_tasks_internal.artifacts x
	 WHERE x.account = agent_tasks.current_account() AND x.id = fetch_artifact.artifact;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
			format('No artifact %s in this account.', fetch_artifact.artifact),
			'List them in agent_tasks.artifacts.');
	END IF;
	IF a.content IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT409', 'artifact is a link',
			format('Artifact %s is stored as %s.', a.id, a.url), 'Download it from its url.');
	END IF;
	-- Through PostgREST: the file as a download, with its own media type
	-- (never rendered by a browser: attachment, nosniff).
	IF nullif(current_setting('request.method', true), '') IS NOT NULL THEN
		PERFORM set_config('response.headers', jsonb_build_array(
			jsonb_build_object('Content-Type', a.content_type),
			jsonb_build_object('Content-Disposition',
				format('attachment; filename="%s"', regexp_replace(a.name, '["\\[:cntrl:]]', '_', 'g'))),
			jsonb_build_object('X-Content-Type-Options', 'nosniff'))::text, true);
	END IF;
	RETURN a.content;
END
$$;
COMMENT ON FUNCTION agent_tasks.fetch_artifact(uuid) IS 'The bytes of a stored artifact. Over REST (GET /rpc/fetch_artifact?artifact=...) the response is the file itself, with its content type, as an attachment. PT404 for an unknown artifact, PT409 for a link.';

CREATE FUNCTION agent_tasks.delete_artifact(artifact uuid)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.artifacts x
	 WHERE x.account = agent_tasks.current_account() AND x.id = delete_artifact.artifact;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
			format('No artifact %s in this account.', delete_artifact.artifact),
			'List them in agent_tasks.artifacts.');
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.delete_artifact(uuid) IS 'Delete an artifact (PT404 when it does not exist).';

-- process_task's files: [{name, content_type, content_base64 | url}, ...]
-- become artifacts of the task, and the list the run and the message keep
-- holds references instead of the bytes: {artifact_id, name, content_type,
-- size, sha256, url}.  A string is a link; an object with artifact_id names
-- an artifact of the task; other objects are kept as they are.
CREATE FUNCTION agent_tasks_internal.store_files(t agent_tasks_internal.tasks, files jsonb)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f jsonb;
	n integer := 0;
	art_id uuid;
	result jsonb := '[]';
BEGIN
	IF files IS NULL OR jsonb_typeof(files) <> 'array' THEN
		RETURN files;			-- process_task's own check refuses non-arrays
	END IF;
	IF jsonb_array_length(files) > 100 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'too many files',
			format('%s files were given; the limit is 100.', jsonb_array_length(files)),
			'Attach the others to the task with agent_tasks.attach_artifact(), or pass fewer.');
	END IF;
	FOR f IN SELECT value FROM jsonb_array_elements(files) LOOP
		n := n + 1;
		art_id := NULL;
		IF jsonb_typeof(f) = 'string' THEN
			art_id := agent_tasks_internal.insert_artifact(t.account, t.id, NULL,
				coalesce(nullif(substring(f #>> '{}' FROM '([^/?#]+)(?:[?#].*)?$'), ''), 'file'),
				NULL, NULL, f #>> '{}');
		ELSIF jsonb_typeof(f) = 'object' AND (f ? 'content_base64' OR f ? 'url') THEN
			art_id := agent_tasks_internal.insert_artifact(t.account, t.id, NULL,
				coalesce(f ->> 'name', substring(f ->> 'url' FROM '([^/?#]+)(?:[?#].*)?$'), format('file %s', n)),
				f ->> 'content_type', f ->> 'content_base64', f ->> 'url', f ->> 'sha256',
				CASE WHEN jsonb_typeof(f -> 'size') = 'number' THEN (f ->> 'size')::bigint END);
		ELSIF jsonb_typeof(f) = 'object' AND f ? 'artifact_id' THEN
			SELECT a.id INTO art_id FROM agent_tasks_internal.artifacts a
			 WHERE a.account = t.account AND a.task_id = t.id AND a.id::text = f ->> 'artifact_id';
			IF art_id IS NULL THEN
				PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
					format('File %s names artifact %s, which task %s does not have.', n, f ->> 'artifact_id', t.id),
					'List the task''s files in agent_tasks.artifacts.');
			END IF;
		END IF;
		IF art_id IS NULL THEN
			result := result || jsonb_build_array(f);
		ELSE
			result := result || (SELECT jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
						'artifact_id', a.id, 'name', a.name, 'content_type', a.content_type,
						'size', a.size, 'sha256', a.sha256, 'url', a.url)))
				  FROM agent_tasks_internal.artifacts a WHERE a.account = t.account AND a.id = art_id);
		END IF;
	END LOOP;
	RETURN result;
END
$$;

-- A new run owns the files its input names (process_task stored them just before).
CREATE FUNCTION agent_tasks_internal.run_files() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF jsonb_typeof(NEW.input -> 'files') = 'array' THEN
		UPDATE agent_tasks_internal.artifacts a SET run_id = NEW.id
		 WHERE a.account = NEW.account AND a.task_id = NEW.task_id AND a.run_id IS NULL
		   AND a.id::text IN (SELECT f ->> 'artifact_id' FROM jsonb_array_elements(NEW.input -> 'files') f
							   WHERE jsonb_typeof(f) = 'object');
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER run_files
	AFTER INSERT ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.input ? 'files')
	EXECUTE FUNCTION agent_tasks_internal.run_files();

-- ---------------------------------------------------------------------------
-- Presence: "this person's device is watching this task".  A touch keeps
-- it for agent_tasks.presence_ttl (default 60 s); clients touch about every
-- 30 s.  Expired rows go on the next touch of the task and in the
-- maintenance job; reads never show them.

CREATE TABLE agent_tasks_internal.presence (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	watcher		text NOT NULL,
	device_id	text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 200),
	since		timestamptz NOT NULL DEFAULT now(),
	seen_at		timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	PRIMARY KEY (account, task_id, watcher, device_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
-- Watching is part of reading: readers announce themselves too.
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_tasks_internal.presence TO agent_tasks_reader;

CREATE VIEW agent_tasks.presence WITH (security_invoker = true) AS
SELECT task_id, account, watcher, device_id, since, seen_at, expires_at
  FROM agent_tasks_internal.presence
 WHERE expires_at > now();
COMMENT ON VIEW agent_tasks.presence IS 'Who is watching which task right now (one row per person and device; rows expire agent_tasks.presence_ttl after the last touch_presence).';
COMMENT ON COLUMN agent_tasks.presence.watcher IS 'The person (e-mail), or the role of a session without one.';
COMMENT ON COLUMN agent_tasks.presence.since IS 'When this device started watching.';

CREATE FUNCTION agent_tasks.watchers(task uuid)
	RETURNS SETOF agent_tasks.presence
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.tasks t
					WHERE t.account = agent_tasks.current_account() AND t.id = watchers.task) THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	RETURN QUERY
		SELECT p.* FROM agent_tasks.presence p
		 WHERE p.account = agent_tasks.current_account() AND p.task_id = watchers.task
		 ORDER BY p.watcher, p.device_id;
END
$$;
COMMENT ON FUNCTION agent_tasks.watchers(uuid) IS 'Who is watching the task now (unexpired presence), by person and device. PT404 for an unknown task.';

CREATE FUNCTION agent_tasks.touch_presence(task uuid, device_id text)
	RETURNS SETOF agent_tasks.presence
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	ttl interval := agent_tasks_internal.setting_seconds('agent_tasks.presence_ttl', 60);
BEGIN
	PERFORM agent_tasks_internal.check_text('device_id', touch_presence.device_id, 200, true);
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.tasks t WHERE t.account = acct AND t.id = touch_presence.task) THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	DELETE FROM agent_tasks_internal.presence p
	 WHERE p.account = acct AND p.task_id = touch_presence.task AND p.expires_at <= now();
	INSERT INTO agent_tasks_internal.presence AS p (account, task_id, watcher, device_id, expires_at)
	VALUES (acct, touch_presence.task, agent_tasks_internal.current_actor(), touch_presence.device_id, now() + ttl)
	ON CONFLICT ON CONSTRAINT presence_pkey DO UPDATE
	   SET seen_at = now(), expires_at = excluded.expires_at;
	RETURN QUERY SELECT * FROM agent_tasks.watchers(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.touch_presence(uuid, text) IS 'Say that you are watching the task from this device, for agent_tasks.presence_ttl (60 s): idempotent, call it again to stay. Returns the current watchers.';

CREATE FUNCTION agent_tasks.leave_presence(task uuid, device_id text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.presence p
	 WHERE p.account = agent_tasks.current_account() AND p.task_id = leave_presence.task
	   AND p.watcher = agent_tasks_internal.current_actor() AND p.device_id = leave_presence.device_id;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION agent_tasks.leave_presence(uuid, text) IS 'Stop watching the task from this device before the presence expires; false when it was not watching.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.fetch_artifact(uuid),
	agent_tasks.watchers(uuid),
	agent_tasks.touch_presence(uuid, text),
	agent_tasks.leave_presence(uuid, text)
TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION
	agent_tasks.attach_artifact(uuid, text, text, text, text, uuid, text, bigint),
	agent_tasks.delete_artifact(uuid)
TO agent_tasks_writer;
