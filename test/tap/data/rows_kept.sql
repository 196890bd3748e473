-- After an upgrade: for every table of agent_tasks_internal, how many rows
-- saved in public.rows_before (by rows_saved.sql) are still there with the
-- same values.  A row may have gained columns, so a saved row matches a
-- current one that contains it (jsonb @>); columns that moved to another
-- table (agents' use, now in agent_usage) are left out of the comparison
-- and checked by t/041_upgrade.pl.  One line per table:
-- "name: kept/saved, now n".
CREATE FUNCTION pg_temp.rows_kept() RETURNS SETOF text
	LANGUAGE plpgsql
AS $$
DECLARE
	t name;
	line text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
			  ORDER BY c.relname
	LOOP
		EXECUTE format('SELECT %L || '': '' ||
			(SELECT count(*) FROM public.rows_before b
			  WHERE b.tbl = %L AND EXISTS (SELECT 1 FROM agent_tasks_internal.%I x
											 WHERE to_jsonb(x) @> b.r - %L::text[]))
			|| ''/'' || (SELECT count(*) FROM public.rows_before b WHERE b.tbl = %L)
			|| '', now '' || (SELECT count(*) FROM agent_tasks_internal.%I)', t, t, t,
			CASE t WHEN 'agents' THEN '{used_tokens,used_cost}' ELSE '{}' END, t, t) INTO line;
		RETURN NEXT line;
	END LOOP;
END
$$;
SELECT * FROM pg_temp.rows_kept();
