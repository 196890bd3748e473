--
-- 22_artifacts: files of tasks and runs (stored bytes or links), the files
-- of process_task, and presence (who is watching a task).
--
\set SHOW_CONTEXT never
RESET ROLE;
SET ROLE regress_writer;
SET agent_tasks.account = 'files-a';
SET agent_tasks.email = 'fay@a.example';
SELECT (agent_tasks.create_task('With files')).id AS t \gset

--
-- Attaching, listing, fetching, deleting
--
SELECT name, content_type, size, sha256, url, stored, run_id, created_by
  FROM agent_tasks.attach_artifact(:'t', 'hello.txt', content_base64 => 'aGVsbG8gd29ybGQ=', content_type => 'text/plain');
-- URL-safe base64 without padding is fine; sha256 and size, when given, are checked
SELECT name, content_type, size, sha256 FROM agent_tasks.attach_artifact(:'t', 'bytes.bin', content_base64 => '_-8');
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x.bin', '_-8', sha256 => %L)$$, :'t', repeat('ab', 32)));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x.bin', '_-8', size => 3)$$, :'t'));
SELECT name, size FROM agent_tasks.attach_artifact(:'t', 'checked.bin', content_base64 => '_-8', size => 2,
	sha256 => upper(encode(sha256('\xffef'::bytea), 'hex')));
-- a link, with what is known about it
SELECT name, content_type, size, sha256, url, stored
  FROM agent_tasks.attach_artifact(:'t', 'design.pdf', url => 'https://files.example/design.pdf',
	content_type => 'application/pdf', size => 123456);
SELECT name, content_type, size, stored FROM agent_tasks.artifacts WHERE task_id = :'t' ORDER BY id;
-- the view never carries the bytes; fetch_artifact returns them
SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS artifacts_columns
  FROM information_schema.columns WHERE table_schema = 'agent_tasks' AND table_name = 'artifacts';
SELECT id AS hello FROM agent_tasks.artifacts WHERE name = 'hello.txt' \gset
SELECT convert_from(agent_tasks.fetch_artifact(:'hello'), 'UTF8') AS content;
SELECT id AS link FROM agent_tasks.artifacts WHERE name = 'design.pdf' \gset
SELECT expect_error(format('SELECT agent_tasks.fetch_artifact(%L)', :'link'));
SELECT expect_error($$SELECT agent_tasks.fetch_artifact('00000000-0000-7000-8000-000000000000')$$);
-- bad input
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=', 'https://x.example/x')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'not base64!')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, '', 'aGk=')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, E'a\nb', 'aGk=')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=', content_type => 'text')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', url => 'ftp://x.example/x')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=', sha256 => 'abc')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=', run => '00000000-0000-7000-8000-000000000000')$$, :'t'));
SELECT expect_error($$SELECT agent_tasks.attach_artifact('00000000-0000-7000-8000-000000000000', 'x', 'aGk=')$$);
-- the size limit (agent_tasks.artifact_max_bytes, default 10 MB; superuser setting)
SHOW agent_tasks.artifact_max_bytes;
RESET ROLE;
SET agent_tasks.artifact_max_bytes = 8;
SET ROLE regress_writer;
SELECT size FROM agent_tasks.attach_artifact(:'t', 'eight.bin', content_base64 => encode('12345678', 'base64'));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'nine.bin', %L)$$, :'t', encode('123456789', 'base64')));
SELECT expect_error(format($$SELECT agent_tasks.attach_artifact(%L, 'big.bin', %L)$$, :'t', repeat('QUFB', 1000)));
SELECT error_code('SET agent_tasks.artifact_max_bytes = 100000000') AS writer_raises_limit;
RESET ROLE;
RESET agent_tasks.artifact_max_bytes;
SET ROLE regress_writer;
-- deleting
SELECT agent_tasks.delete_artifact(id) FROM agent_tasks.artifacts WHERE name = 'eight.bin';
SELECT agent_tasks.delete_artifact(:'link');
SELECT expect_error(format('SELECT agent_tasks.delete_artifact(%L)', :'link'));
SELECT count(*) AS artifacts FROM agent_tasks.artifacts WHERE task_id = :'t';
-- readers list and fetch, but do not attach or delete
SET ROLE regress_reader;
SELECT count(*) AS reader_sees FROM agent_tasks.artifacts;
SELECT length(agent_tasks.fetch_artifact(id)) AS reader_fetches FROM agent_tasks.artifacts WHERE name = 'hello.txt';
SELECT error_code(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=')$$, :'t')) AS reader_attaches;
-- another account sees nothing, and its requests look like missing rows
SET ROLE regress_writer;
SET agent_tasks.account = 'files-b';
SELECT count(*) AS other_account_sees FROM agent_tasks.artifacts;
SELECT error_code(format('SELECT agent_tasks.fetch_artifact(%L)', :'hello')) AS fetch_other,
	   error_code(format('SELECT agent_tasks.delete_artifact(%L)', :'hello')) AS delete_other,
	   error_code(format($$SELECT agent_tasks.attach_artifact(%L, 'x', 'aGk=')$$, :'t')) AS attach_other;
SET agent_tasks.account = 'files-a';

--
-- process_task(task, message, files): the files become artifacts of the run
--
SELECT status FROM agent_tasks.process_task(:'t', 'Here are the inputs',
	'[{"name": "brief.md", "content_type": "text/markdown", "content_base64": "IyBCcmllZg=="},
	  {"url": "https://files.example/assets/logo.png?v=2", "content_type": "image/png"},
	  "https://files.example/data.csv",
	  {"name": "a note without content"}]');
SELECT latest_run_id AS run FROM agent_tasks.tasks WHERE id = :'t' \gset
SELECT name, content_type, size, url, run_id = :'run' AS of_the_run
  FROM agent_tasks.artifacts WHERE task_id = :'t' AND run_id IS NOT NULL ORDER BY id;
-- the run and the message keep references, never the bytes
SELECT mask(jsonb_pretty(input)) AS run_input FROM agent_tasks.runs WHERE id = :'run';
SELECT mask(data::text) = mask((SELECT input - 'message' FROM agent_tasks.runs WHERE id = :'run')::text) AS message_has_same_files
  FROM agent_tasks.messages WHERE task_id = :'t';
SELECT count(*) AS base64_anywhere FROM agent_tasks.runs r, agent_tasks.messages m
 WHERE r.input::text LIKE '%IyBCcmllZg%' OR m.data::text LIKE '%IyBCcmllZg%';
-- a file of the task can be named again by its artifact_id
RESET ROLE;
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'completed', output => '{}')).status;
SET ROLE regress_writer;
SELECT status FROM agent_tasks.process_task(:'t', 'Again, with the greeting', jsonb_build_array(jsonb_build_object('artifact_id', :'hello')));
SELECT mask((input -> 'files')::text) AS files FROM agent_tasks.runs WHERE task_id = :'t' ORDER BY id DESC LIMIT 1;
SELECT expect_error(format($$SELECT agent_tasks.process_task(%L, NULL, '[{"artifact_id": "00000000-0000-7000-8000-000000000000"}]')$$, :'t'));
-- a bad file refuses the whole call
SELECT expect_error(format($$SELECT agent_tasks.process_task(%L, 'x', '[{"name": "a", "content_base64": "!!"}]')$$, :'t'));
-- files still must be an array
SELECT expect_error(format($$SELECT agent_tasks.process_task(%L, 'x', '{"name": "a"}')$$, :'t'));
-- deleting the task deletes its files
SELECT agent_tasks.delete_task(:'t');
SELECT count(*) AS artifacts_left FROM agent_tasks.artifacts WHERE task_id = :'t';

--
-- Presence
--
SELECT (agent_tasks.create_task('Watched')).id AS w \gset
SHOW agent_tasks.presence_ttl;
SELECT watcher, device_id, expires_at - seen_at AS ttl, since = seen_at AS first_touch
  FROM agent_tasks.touch_presence(:'w', 'laptop');
-- touching again is idempotent: one row, kept alive
SELECT watcher, device_id, since < seen_at AS renewed FROM agent_tasks.touch_presence(:'w', 'laptop');
SELECT watcher, device_id FROM agent_tasks.touch_presence(:'w', 'phone');
SET agent_tasks.email = 'gus@a.example';
SELECT watcher, device_id FROM agent_tasks.touch_presence(:'w', 'laptop');
-- readers watch too
SET ROLE regress_reader;
SET agent_tasks.email = 'rita@a.example';
SELECT count(*) AS watchers FROM agent_tasks.touch_presence(:'w', 'tablet');
SELECT watcher, device_id FROM agent_tasks.watchers(:'w');
-- expired rows are not shown, and the next touch removes them
RESET ROLE;
UPDATE agent_tasks_internal.presence SET expires_at = now() - interval '1 second'
 WHERE account = 'files-a' AND watcher = 'fay@a.example' AND device_id = 'phone';
SET ROLE regress_reader;
SELECT watcher, device_id FROM agent_tasks.watchers(:'w');
RESET ROLE;
SELECT count(*) AS rows_before_touch FROM agent_tasks_internal.presence WHERE task_id = :'w';
SET ROLE regress_reader;
SELECT count(*) AS watchers FROM agent_tasks.touch_presence(:'w', 'tablet');
RESET ROLE;
SELECT count(*) AS rows_after_touch FROM agent_tasks_internal.presence WHERE task_id = :'w';
SET ROLE regress_reader;
-- leaving
SELECT agent_tasks.leave_presence(:'w', 'tablet') AS left, agent_tasks.leave_presence(:'w', 'tablet') AS again;
SELECT watcher, device_id FROM agent_tasks.presence WHERE task_id = :'w' ORDER BY 1, 2;
-- bad input and other accounts
SELECT expect_error(format($$SELECT agent_tasks.touch_presence(%L, '')$$, :'w'));
SELECT expect_error($$SELECT agent_tasks.touch_presence('00000000-0000-7000-8000-000000000000', 'x')$$);
SELECT expect_error($$SELECT agent_tasks.watchers('00000000-0000-7000-8000-000000000000')$$);
SET agent_tasks.account = 'files-b';
SELECT error_code(format($$SELECT agent_tasks.watchers(%L)$$, :'w')) AS other_watchers,
	   error_code(format($$SELECT agent_tasks.touch_presence(%L, 'spy')$$, :'w')) AS other_touch;
SELECT count(*) AS other_account_presence FROM agent_tasks.presence;
