-- Before an upgrade: every row of every table of agent_tasks_internal, as
-- jsonb, in public.rows_before (compared by rows_kept.sql).
CREATE TABLE public.rows_before (tbl name NOT NULL, r jsonb NOT NULL);
DO $$
DECLARE
	t name;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
	LOOP
		EXECUTE format('INSERT INTO public.rows_before SELECT %L, to_jsonb(x) FROM agent_tasks_internal.%I x', t, t);
	END LOOP;
END
$$;
