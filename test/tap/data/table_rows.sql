-- Every table of agent_tasks_internal: row count and a digest of all its
-- rows, one line each, so that two databases can be compared row for row.
CREATE FUNCTION pg_temp.table_rows() RETURNS SETOF text
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
		EXECUTE format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), ''''))
						  FROM agent_tasks_internal.%I x', t, t) INTO line;
		RETURN NEXT line;
	END LOOP;
END
$$;
SELECT * FROM pg_temp.table_rows();
