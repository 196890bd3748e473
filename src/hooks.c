/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  Task hooks: an application's own functions, called inside the
 *	  transaction of a task change (agent_tasks.create_hook).
 *
 *	  The transition path (transitions.c) and the message trigger call
 *	  at_fire_hooks() for each event; the hooks of the task's account that
 *	  subscribe to it are called in name order, each as the role that
 *	  registered it (which must still own the function), in a
 *	  security-restricted context with search_path pinned to pg_catalog,
 *	  pg_temp.  A hook that raises aborts the change.  A hook's own task
 *	  changes fire hooks again, up to a fixed depth (PT508 beyond).
 *
 *	  Which accounts have hooks is asked once per top-level statement (and
 *	  again after this session changes hooks), so an account without hooks
 *	  pays a lookup in a short list per transition.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "agent_tasks.h"
#include "hooks.h"
#include "worker.h"

/* How deep hooks may nest (a hook changing a task whose hooks change...). */
#define MAX_HOOK_DEPTH 8

PG_FUNCTION_INFO_V1(at_fire_hooks_sql);
PG_FUNCTION_INFO_V1(at_hooks_changed);

static int	hook_depth = 0;

/*
 * The accounts that have enabled hooks, as seen at the start of the current
 * top-level statement (or since this session last changed hooks): at most
 * MAX_KNOWN_ACCOUNTS of them, in TopMemoryContext; beyond that every event
 * asks the table.
 */
#define MAX_KNOWN_ACCOUNTS 64
static bool accounts_known = false;
static bool too_many_accounts = false;
static int	n_known_accounts = 0;
static char *known_accounts[MAX_KNOWN_ACCOUNTS];
static LocalTransactionId known_lxid = InvalidLocalTransactionId;
static TimestampTz known_statement = 0;

static SPIPlanPtr accounts_plan;
static SPIPlanPtr hooks_for_plan;
static SPIPlanPtr task_row_plan;
static SPIPlanPtr event_data_plan;

static bool
accounts_current(void)
{
	return accounts_known && known_lxid == MyProc->lxid &&
		known_statement == GetCurrentStatementStartTimestamp();
}

/* May this account have hooks?  Without SPI when the list is current. */
static bool
account_may_have_hooks(const char *account)
{
	int			i;

	if (!accounts_current() || too_many_accounts)
		return true;
	for (i = 0; i < n_known_accounts; i++)
		if (strcmp(known_accounts[i], account) == 0)
			return true;
	return false;
}

/* Inside SPI: read the accounts that have hooks. */
static void
load_accounts(void)
{
	int			i;

	for (i = 0; i < n_known_accounts; i++)
		pfree(known_accounts[i]);
	n_known_accounts = 0;
	if (accounts_plan == NULL)
		accounts_plan = at_keep_plan("SELECT DISTINCT h.account FROM agent_tasks_internal.hooks h"
									 " WHERE h.enabled LIMIT " CppAsString2(MAX_KNOWN_ACCOUNTS) " + 1",
									 0, NULL);
	if (SPI_execute_plan(accounts_plan, NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look for hooks");
	too_many_accounts = SPI_processed > MAX_KNOWN_ACCOUNTS;
	for (i = 0; i < SPI_processed && i < MAX_KNOWN_ACCOUNTS; i++)
		known_accounts[n_known_accounts++] =
			MemoryContextStrdup(TopMemoryContext,
								SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	accounts_known = true;
	known_lxid = MyProc->lxid;
	known_statement = GetCurrentStatementStartTimestamp();
}

/* One row of a result as a datum that outlives SPI_finish. */
static Datum
copy_result(int column, bool *isnull)
{
	Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
	Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, column - 1);

	return *isnull ? (Datum) 0 : SPI_datumTransfer(value, att->attbyval, att->attlen);
}

/*
 * The function a hook names, checked as at registration: it exists and is
 * owned by the role the hook runs as.
 */
static Oid
hook_function(const char *hook, const char *signature, Oid role)
{
	Oid			fn = at_lookup_function(signature);
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_AT_NOT_FOUND),
				 errmsg("the function of hook \"%s\" does not exist", hook),
				 errdetail("Hook \"%s\" calls %s.", hook, signature),
				 errhint("Create the function again, or drop the hook with agent_tasks.drop_hook('%s').", hook)));
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", fn);
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	if (owner != role)
		ereport(ERROR,
				(errcode(ERRCODE_AT_FORBIDDEN),
				 errmsg("hook \"%s\" may not run %s", hook, signature),
				 errdetail("The function is owned by %s, not by %s, the role the hook runs as.",
						   GetUserNameFromId(owner, true), GetUserNameFromId(role, true)),
				 errhint("A hook runs only a function of the role that registered it: give it back to that role, or register the hook again as its owner.")));
	return fn;
}

/* Call one hook's function as its role, restricted, with a pinned search_path. */
static void
call_hook(Oid fn, Oid role, Datum event, Datum task, Datum previous_status,
		  bool no_previous_status, Datum data)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 4);
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 4, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = event;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = task;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = previous_status;
	fcinfo->args[2].isnull = no_previous_status;
	fcinfo->args[3].value = data;
	fcinfo->args[3].isnull = false;
	(void) FunctionCallInvoke(fcinfo);

	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

void
at_fire_hooks(const char *account, const pg_uuid_t *task, const char *event,
			  const char *previous_status, Datum extra)
{
	Oid			types[] = {TEXTOID, UUIDOID, TEXTOID, JSONBOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			nhooks;
	char	  **names;
	char	  **signatures;
	Oid		   *roles;
	Datum		task_row;
	Datum		data;
	bool		isnull;
	int			account_nestlevel;
	int			i;

	/* the common case, no hook in the account, decided without SPI */
	if (!account_may_have_hooks(account))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!accounts_current())
	{
		load_accounts();
		if (!account_may_have_hooks(account))
		{
			SPI_finish();
			return;
		}
	}

	values[0] = CStringGetTextDatum(account);
	values[1] = UUIDPGetDatum(task);
	values[2] = CStringGetTextDatum(event);
	if (hooks_for_plan == NULL)
		hooks_for_plan = at_keep_plan("SELECT h.name, h.function, to_regrole(h.run_as)::oid"
									  "  FROM agent_tasks_internal.hooks h"
									  " WHERE h.account = $1 AND h.enabled AND h.events && ARRAY[$3, '*']"
									  " ORDER BY h.name",
									  3, types);
	if (SPI_execute_plan(hooks_for_plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hooks");
	nhooks = SPI_processed;
	if (nhooks == 0)
	{
		SPI_finish();
		return;
	}
	if (hook_depth >= MAX_HOOK_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_AT_LOOP),
				 errmsg("task hooks nest more than %d deep", MAX_HOOK_DEPTH),
				 errdetail("Event %s of task %s fires hooks from inside %d hook calls.", event,
						   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(task))),
						   hook_depth),
				 errhint("A hook that changes tasks makes their hooks fire; make sure the chain of changes ends.")));

	names = palloc(sizeof(char *) * nhooks);
	signatures = palloc(sizeof(char *) * nhooks);
	roles = palloc(sizeof(Oid) * nhooks);
	for (i = 0; i < nhooks; i++)
	{
		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		signatures[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		roles[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_AT_FORBIDDEN),
					 errmsg("the role of hook \"%s\" does not exist", names[i]),
					 errdetail("The role that registered hook \"%s\" was dropped or renamed.", names[i]),
					 errhint("Register the hook again as the function's owner, or drop it with agent_tasks.drop_hook('%s').",
							 names[i])));
	}

	/*
	 * The task's account is the session's for the hooks (an executor or the
	 * dispatcher has none): the view reads through it, and so do the API
	 * calls a hook makes.
	 */
	account_nestlevel = NewGUCNestLevel();
	(void) set_config_option("agent_tasks.account", account, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/* the task as the API shows it, and the event's webhook payload */
	if (task_row_plan == NULL)
		task_row_plan = at_keep_plan("SELECT v FROM agent_tasks.tasks v WHERE v.account = $1 AND v.id = $2",
									 2, types);
	if (SPI_execute_plan(task_row_plan, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "task of a hook event not found");
	task_row = copy_result(1, &isnull);

	values[3] = extra;
	nulls[3] = extra == (Datum) 0 ? 'n' : ' ';
	if (event_data_plan == NULL)
		event_data_plan = at_keep_plan("SELECT agent_tasks_internal.webhook_task_data(t) || coalesce($4, '{}')"
									   "  FROM agent_tasks_internal.tasks t WHERE t.account = $1 AND t.id = $2",
									   4, types);
	if (SPI_execute_plan(event_data_plan, values, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "task of a hook event not found");
	data = copy_result(1, &isnull);

	hook_depth++;
	PG_TRY();
	{
		for (i = 0; i < nhooks; i++)
			call_hook(hook_function(names[i], signatures[i], roles[i]), roles[i],
					  CStringGetTextDatum(event), task_row,
					  previous_status ? CStringGetTextDatum(previous_status) : (Datum) 0,
					  previous_status == NULL, data);
	}
	PG_FINALLY();
	{
		hook_depth--;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, account_nestlevel);
	SPI_finish();
}

/*
 * fire_hooks(account, task, event, previous_status, extra): for events
 * raised in SQL (messages).
 */
Datum
at_fire_hooks_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_VOID();
	at_fire_hooks(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_UUID_P(1),
				  text_to_cstring(PG_GETARG_TEXT_PP(2)),
				  PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)),
				  PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4));
	PG_RETURN_VOID();
}

/* AFTER ... FOR EACH STATEMENT on hooks: this session asks again. */
Datum
at_hooks_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "hooks_changed must be called as a trigger");
	accounts_known = false;
	return PointerGetDatum(NULL);
}
