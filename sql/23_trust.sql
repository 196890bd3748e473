--
-- 23_trust: trust boundaries (issue 10).  Accounts bound to roles; who may
-- choose an account; worker_status() scoped to the caller's account; a
-- PTxxx code for every refusal of a null or wrong-typed JSON argument.
--
\set SHOW_CONTEXT never
RESET ROLE;
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM (VALUES ('regress_bound', 'agent_tasks_writer'),
								   ('regress_chooser', 'agent_tasks_writer'),
								   ('regress_monitor', 'agent_tasks_admin')) AS v(name, member_of)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
			EXECUTE format('CREATE ROLE %I LOGIN IN ROLE %I', r.name, r.member_of);
		END IF;
	END LOOP;
END
$$;
GRANT pg_monitor TO regress_monitor;

--
-- Binding: only the DBA
--
SET ROLE regress_app;
SET agent_tasks.account = 'trust-a';
SELECT expect_error($$SELECT agent_tasks.bind_account('regress_bound', 'trust-a')$$);
SELECT expect_error($$SELECT agent_tasks.allow_account_choice('regress_chooser')$$);
RESET ROLE;
SELECT expect_error($$SELECT agent_tasks.bind_account('no_such_role', 'trust-a')$$);
SELECT expect_error($$SELECT agent_tasks.bind_account(NULL, 'trust-a')$$);
SELECT expect_error($$SELECT agent_tasks.bind_account('regress_bound', '')$$);
SELECT expect_error($$SELECT agent_tasks.bind_account('regress_bound', NULL)$$);
SELECT expect_error($$SELECT agent_tasks.unbind_account('regress_bound')$$);
SELECT * FROM agent_tasks.bind_account('regress_bound', 'trust-a');
SELECT * FROM agent_tasks.allow_account_choice('regress_chooser', false);
SELECT * FROM agent_tasks.account_bindings WHERE role LIKE 'regress_%' ORDER BY role;
-- the setting itself is the DBA's: a role cannot undo its binding
SET ROLE regress_bound;
SELECT expect_error($$SET agent_tasks.bound_account = ''$$);
SELECT expect_error($$ALTER ROLE regress_bound SET agent_tasks.bound_account = ''$$);
RESET ROLE;

--
-- A bound role has its account, and no other (from its next login)
--
\c - regress_bound
\set SHOW_CONTEXT never
SELECT agent_tasks.current_account() AS bound_account;
SELECT title FROM agent_tasks.create_task('made by a bound role');
SET agent_tasks.account = 'trust-a';
SELECT agent_tasks.current_account() AS same_account_named;
SET agent_tasks.account = 'trust-b';
SELECT expect_error($$SELECT agent_tasks.current_account()$$);
SELECT expect_error($$SELECT count(*) FROM agent_tasks.tasks$$);
RESET agent_tasks.account;
SELECT set_config('request.jwt.claims', '{"account": "trust-b", "role": "x"}', false) IS NOT NULL AS forged_claims;
SELECT expect_error($$SELECT agent_tasks.create_task('into another account')$$);
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_cleared;
SELECT count(*) AS tasks_seen FROM agent_tasks.tasks;

--
-- A role that may not choose; then allowed to
--
\c - regress_chooser
\set SHOW_CONTEXT never
SET agent_tasks.account = 'trust-b';
SELECT expect_error($$SELECT agent_tasks.current_account()$$);
\c - postgres
\set SHOW_CONTEXT never
SELECT * FROM agent_tasks.allow_account_choice('regress_chooser', true);
\c - regress_chooser
\set SHOW_CONTEXT never
SET agent_tasks.account = 'trust-b';
SELECT agent_tasks.current_account() AS chosen;
\c - postgres
\set SHOW_CONTEXT never
SELECT role, account FROM agent_tasks.unbind_account('regress_bound');
SELECT role, account, account_choice FROM agent_tasks.allow_account_choice('regress_chooser', NULL);
SELECT count(*) AS bindings_left FROM agent_tasks.account_bindings WHERE role LIKE 'regress_%';
\c - regress_bound
\set SHOW_CONTEXT never
SET agent_tasks.account = 'trust-b';
SELECT agent_tasks.current_account() AS unbound_chooses;
\c - postgres
\set SHOW_CONTEXT never

--
-- worker_status(): counters and other accounts' runs and errors only for
-- superusers and pg_monitor
--
SELECT count(*) > 0 AS superuser_sees_counters FROM agent_tasks.worker_status() WHERE runs_done IS NOT NULL;
SET ROLE regress_app;
SET agent_tasks.account = 'trust-a';
SELECT count(*) AS admin_sees_counters FROM agent_tasks.worker_status() WHERE runs_done IS NOT NULL OR runs_failed IS NOT NULL;
SELECT count(*) AS admin_sees_foreign_errors FROM agent_tasks.worker_status() WHERE last_error IS NOT NULL OR current_run IS NOT NULL;
RESET agent_tasks.account;
SELECT count(*) >= 0 AS answers_without_account FROM agent_tasks.worker_status();
RESET ROLE;
SET ROLE regress_monitor;
SELECT count(*) > 0 AS monitor_sees_counters FROM agent_tasks.worker_status() WHERE runs_done IS NOT NULL;
RESET ROLE;

--
-- A PT code for every null or wrong-typed JSON argument
--
SET ROLE regress_app;
SET agent_tasks.account = 'trust-a';
SELECT id AS t FROM agent_tasks.create_task('patched') \gset
SELECT name FROM agent_tasks.create_agent('trust-agent', 'external');
SELECT (agent_tasks.create_webhook('https://hooks.example.com/trust', '{*}') ->> 'id') AS w \gset
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'do', items => 'null'::jsonb)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', items => '{"a": 1}'::jsonb)$$);
SELECT expect_error($$SELECT agent_tasks.update_task('$$ || :'t' || $$', 'null')$$);
SELECT expect_error($$SELECT agent_tasks.update_task('$$ || :'t' || $$', '[1]')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('trust-agent', 'null')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('trust-agent', '"x"')$$);
SELECT expect_error($$SELECT agent_tasks.update_webhook('$$ || :'w' || $$', 'null')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('n', '0 2 * * *', 'null')$$);
SELECT expect_error($$SELECT agent_tasks.validate_json('{"type": 5}', '{}')$$);
SELECT expect_error($$SELECT agent_tasks.validate_json('{"enum": 5}', '{}')$$);
SELECT expect_error($$SELECT agent_tasks.validate_json('{"properties": {"n": {"minimum": "x"}}}', '{"n": 1}')$$);
SELECT expect_error($$SELECT agent_tasks.validate_json('{"type": "array", "maxItems": "many"}', '[]')$$);
SELECT agent_tasks.validate_json('{"type": "array", "maxItems": 1e20}', '[1]') AS huge_bound_is_fine;
-- nesting that would exhaust the stack (54001) is refused first
SELECT expect_error($$SELECT agent_tasks.validate_json((repeat('{"items":', 3000) || '{}' || repeat('}', 3000))::jsonb, (repeat('[', 3000) || repeat(']', 3000))::jsonb)$$) ~ '^PT422: JSON nested too deeply' AS deep_refused;
SELECT cardinality(agent_tasks.validate_json((repeat('{"items":', 100) || '{}' || repeat('}', 100))::jsonb, (repeat('[', 100) || repeat(']', 100))::jsonb)) AS depth_100_validated;
SELECT expect_error($$SELECT agent_tasks.process_task('$$ || :'t' || $$', files => (SELECT jsonb_agg('https://f.example.com/' || i) FROM generate_series(1, 101) i))$$);
-- JSON null where it means "absent" stays accepted
SELECT title FROM agent_tasks.create_task('null context', context => 'null', metadata => 'null');
RESET ROLE;
