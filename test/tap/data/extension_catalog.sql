-- Everything the installed agent_tasks extension consists of, one line per
-- fact, sorted, with no OIDs: two databases whose outputs are equal hold the
-- same extension.  Used by t/041_upgrade.pl (FilledDatabase::catalog) to compare an upgraded 0.1.0
-- with a fresh install.
WITH ext AS (
	SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'agent_tasks'
),
members AS (
	SELECT d.classid, d.objid
	  FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (
	SELECT c.oid, c.oid::regclass::text AS name, c.relkind
	  FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
facts(fact) AS (
	SELECT 'version ' || extversion FROM ext
	UNION ALL
	SELECT 'config ' || cfg::regclass::text || ' filter ' || coalesce(quote_literal(cond), 'NULL')
	  FROM ext, unnest(extconfig, extcondition) AS u(cfg, cond)
	UNION ALL
	SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
	UNION ALL
	-- functions: whole definition (body, volatility, security, settings), privileges, comment
	SELECT 'function ' || p.oid::regprocedure::text || E'\n' || pg_get_functiondef(p.oid)
		   || E'\nacl ' || coalesce(p.proacl::text, 'default')
		   || E'\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
	  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	 WHERE p.prokind <> 'a'
	UNION ALL
	SELECT 'aggregate ' || p.oid::regprocedure::text || ' acl ' || coalesce(p.proacl::text, 'default')
	  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	 WHERE p.prokind = 'a'
	UNION ALL
	-- tables, views, sequences: kind, options, privileges, row security, comment
	SELECT format('relation %s kind %s options %s acl %s rls %s/%s comment %s', r.name, r.relkind,
				  coalesce(c.reloptions::text, '-'), coalesce(c.relacl::text, 'default'),
				  c.relrowsecurity, c.relforcerowsecurity, coalesce(obj_description(r.oid, 'pg_class'), '-'))
	  FROM rels r JOIN pg_class c ON c.oid = r.oid
	UNION ALL
	-- columns in order, with type, default, nullability, generation, privileges, comment
	SELECT format('column %s %s %s %s notnull %s default %s generated %s acl %s comment %s',
				  r.name, row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
				  format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-'), a.attgenerated,
				  coalesce(a.attacl::text, 'default'), coalesce(col_description(r.oid, a.attnum), '-'))
	  FROM rels r
	  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
	UNION ALL
	SELECT format('view %s %s', r.name, pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('constraint %s %s %s', r.name, co.conname, pg_get_constraintdef(co.oid))
	  FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
	UNION ALL
	SELECT format('index %s', pg_get_indexdef(i.indexrelid))
	  FROM rels r JOIN pg_index i ON i.indrelid = r.oid
	UNION ALL
	SELECT format('trigger %s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
	  FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
	UNION ALL
	SELECT format('policy %s %s cmd %s permissive %s roles %s using %s check %s', r.name, po.polname,
				  po.polcmd, po.polpermissive,
				  (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END, ',' ORDER BY 1)
					 FROM unnest(po.polroles) AS x),
				  coalesce(pg_get_expr(po.polqual, po.polrelid), '-'),
				  coalesce(pg_get_expr(po.polwithcheck, po.polrelid), '-'))
	  FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
	UNION ALL
	SELECT format('rule %s', pg_get_ruledef(ru.oid))
	  FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid AND ru.rulename <> '_RETURN'
	UNION ALL
	SELECT format('type %s acl %s comment %s', t.oid::regtype, coalesce(t.typacl::text, 'default'),
				  coalesce(obj_description(t.oid, 'pg_type'), '-'))
	  FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
	UNION ALL
	SELECT format('schema %s owner-is-superuser %s acl %s comment %s', n.nspname,
				  (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner), coalesce(n.nspacl::text, 'default'),
				  coalesce(obj_description(n.oid, 'pg_namespace'), '-'))
	  FROM pg_namespace n JOIN members m ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid
	UNION ALL
	SELECT format('default privileges in %s for %s: %s', n.nspname, d.defaclobjtype, d.defaclacl)
	  FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
	 WHERE n.nspname IN ('agent_tasks', 'agent_tasks_internal')
	UNION ALL
	-- (among the extension's roles; other roles are the cluster's business)
	SELECT format('role %s member of %s', m.member::regrole, m.roleid::regrole)
	  FROM pg_auth_members m
	 WHERE m.roleid::regrole::text LIKE 'agent\_tasks\_%' AND m.member::regrole::text LIKE 'agent\_tasks\_%'
)
SELECT fact FROM facts ORDER BY fact COLLATE "C";
