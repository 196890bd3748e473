-- Rows of every kind in account 'backup', through the public API of 0.1.0
-- and later (t/040_dump_restore.pl, t/041_upgrade.pl): tasks in every
-- status with runs, activities, messages, people, dependencies, a
-- command-mode parent, agents (one with a secret), a webhook with pending
-- deliveries, an API key, a rate limit, a schedule (pg_cron) and an
-- artifact.  The database's runs must not be executed by in-server workers
-- while it runs (agent_tasks.database names another database), so that the
-- sql agent's run stays queued.  Names of the tasks and runs, and the API
-- key's token, are kept in public.fill for the tests.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE FUNCTION public.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT jsonb_build_object('answer', task.title) $$;
CREATE TABLE public.fill (name text PRIMARY KEY, value text NOT NULL);

SET agent_tasks.account = 'backup';
-- 0.1.0's name of agent_tasks.email: this file fills 0.1.0 installs too
-- (t/041_upgrade.pl), and the current version still reads it.
SET agent_tasks."user" = 'ann@example.com';

SELECT agent_tasks.create_webhook('https://hooks.example.com/in', '{*}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT agent_tasks.create_agent('answerer', 'sql', 'public.answer');
SELECT agent_tasks.create_agent('remote', 'external', max_attempts => 1);
SELECT agent_tasks.create_agent('hook', 'http', 'https://agent.example.com/run');
SELECT agent_tasks.set_agent_secret('hook', 'sk-test-secret-0123456789');
SELECT agent_tasks.set_rate_limit(1000, '1 hour');
INSERT INTO public.fill SELECT 'api_key', agent_tasks.create_api_key('ci', '{task:read,task:write}') ->> 'token';

-- One external run at a time is claimed right after its task is queued, so
-- that each claim takes the run meant.
INSERT INTO public.fill SELECT 'pending', id FROM agent_tasks.create_task('pending task', 'waits',
	assignees => '{bob@example.com}', followers => '{carol@example.com}', labels => '{backup}');
INSERT INTO public.fill SELECT 'in_progress', id FROM agent_tasks.create_task('running task', agent => 'remote', auto_process => true);
INSERT INTO public.fill SELECT 'in_progress_run', run_id FROM agent_tasks.claim_runs('w1', '{remote}', 1);
SELECT phase FROM agent_tasks.report_progress((SELECT value::uuid FROM public.fill WHERE name = 'in_progress_run'),
	'working', 'half way', worker => 'w1');
INSERT INTO public.fill SELECT 'completed', id FROM agent_tasks.create_task('completed task', agent => 'remote', auto_process => true);
SELECT status FROM agent_tasks.complete_run((SELECT run_id FROM agent_tasks.claim_runs('w1', '{remote}', 1)),
	'{"pages": 3}', '{"total_tokens": 42}', worker => 'w1');
INSERT INTO public.fill SELECT 'failed', id FROM agent_tasks.create_task('failed task', agent => 'remote', auto_process => true);
SELECT status FROM agent_tasks.fail_run((SELECT run_id FROM agent_tasks.claim_runs('w1', '{remote}', 1)),
	'it broke', retryable => false, worker => 'w1');
INSERT INTO public.fill SELECT 'needs_clarification', id FROM agent_tasks.create_task('asking task', agent => 'remote', auto_process => true);
SELECT status FROM agent_tasks.request_clarification((SELECT run_id FROM agent_tasks.claim_runs('w1', '{remote}', 1)),
	'Which colour?', worker => 'w1');
INSERT INTO public.fill SELECT 'on_hold', id FROM agent_tasks.create_task('stopped task', agent => 'remote', auto_process => true);
SELECT status FROM agent_tasks.stop_task((SELECT value::uuid FROM public.fill WHERE name = 'on_hold'));
INSERT INTO public.fill SELECT 'cancelled', id FROM agent_tasks.create_task('cancelled task', agent => 'remote', auto_process => true);
SELECT status FROM agent_tasks.cancel_task((SELECT value::uuid FROM public.fill WHERE name = 'cancelled'));
INSERT INTO public.fill SELECT 'queued_external', id FROM agent_tasks.create_task('queued for remote', agent => 'remote', auto_process => true);
INSERT INTO public.fill SELECT 'queued_sql', id FROM agent_tasks.create_task('queued for answerer', agent => 'answerer', auto_process => true);
INSERT INTO public.fill SELECT 'blocked', id FROM agent_tasks.create_task('blocked task', agent => 'answerer',
	depends_on => ARRAY[(SELECT value::uuid FROM public.fill WHERE name = 'pending')]);
INSERT INTO public.fill SELECT 'parent', id FROM agent_tasks.create_task('site pages', command => 'generate_pages',
	items => '[{"title": "About", "external_id": "about"}, {"title": "Team", "external_id": "team"}]');

SELECT role FROM agent_tasks.send_message((SELECT value::uuid FROM public.fill WHERE name = 'pending'), 'Hello there');
SELECT feedback FROM agent_tasks.send_feedback((SELECT value::uuid FROM public.fill WHERE name = 'completed'), 'like');
SELECT name FROM agent_tasks.attach_artifact((SELECT value::uuid FROM public.fill WHERE name = 'completed'), 'report.txt',
	content_base64 => encode('the report', 'base64'), content_type => 'text/plain');
SELECT name FROM agent_tasks.schedule_task('nightly', '0 3 * * *', '{"title": "Nightly report"}');
SELECT count(*) FROM agent_tasks.touch_presence((SELECT value::uuid FROM public.fill WHERE name = 'pending'), 'laptop');
-- An ordinary role's creation is counted against the account's rate limit.
CREATE ROLE fill_writer IN ROLE agent_tasks_writer;
SET ROLE fill_writer;
SELECT status FROM agent_tasks.create_task('made by a writer');
RESET ROLE;
