/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Recognise a session that restores a dump, so that the rows pg_dump
 *	  saved come back exactly as they were.
 *
 *	  The tables of agent_tasks_internal are registered with
 *	  pg_extension_config_dump, so pg_dump saves their rows and a restore
 *	  loads them after CREATE EXTENSION.  The extension's triggers would
 *	  treat each loaded row as a new change: refuse a task inserted as
 *	  completed, log a second "created" activity, queue webhook deliveries
 *	  again, count the rows against rate limits, rebind agents to the
 *	  restoring role.  Every such trigger therefore carries
 *	  WHEN (NOT agent_tasks_internal.restoring()).
 *
 *	  pg_dump and pg_restore always start their session with
 *	  SET row_security = off; only a role that bypasses row-level security
 *	  (a superuser, or a role with BYPASSRLS) can then write these tables.
 *	  That pair is what "restoring" means here.  Ordinary sessions keep
 *	  row_security on (the default), and API roles cannot bypass RLS, so
 *	  their changes stay checked and logged.  A superuser could switch the
 *	  triggers off in other ways anyway (session_replication_role).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rls.h"

PG_FUNCTION_INFO_V1(at_restoring);

Datum
at_restoring(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!row_security && has_bypassrls_privilege(GetUserId()));
}
