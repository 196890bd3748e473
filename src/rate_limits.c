/*-------------------------------------------------------------------------
 *
 * rate_limits.c
 *	  The trigger task_rate_limit on agent_tasks_internal.tasks: whether a
 *	  new root task counts against a rate limit.
 *
 *	  Most creations count against none: an SQL session, of an account
 *	  without a limit of its own, or a role that bypasses row-level
 *	  security.  Those cost here a role look-up and one index probe.  The
 *	  others (REST requests, sessions carrying JWT claims, accounts with a
 *	  limit) are counted by count_task_creation() (SQL, SECURITY DEFINER: no
 *	  API role may write the counters), which holds the rules and the
 *	  sharded counters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "agent_tasks.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_task_rate_limit);

static SPIPlanPtr account_limit_plan;
static SPIPlanPtr count_plan;

/* Superusers and BYPASSRLS roles (maintenance, the extension's own jobs). */
static bool
role_bypasses_limits(Oid role)
{
	HeapTuple	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	bool		bypasses;

	if (!HeapTupleIsValid(tuple))
		return true;			/* a dropped role counts against nothing */
	bypasses = ((Form_pg_authid) GETSTRUCT(tuple))->rolsuper ||
		((Form_pg_authid) GETSTRUCT(tuple))->rolbypassrls;
	ReleaseSysCache(tuple);
	return bypasses;
}

/* Whether the account has a limit of its own (set_rate_limit). */
static bool
account_has_limit(const char *account)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	if (account_limit_plan == NULL)
		account_limit_plan = at_keep_plan("SELECT 1 FROM agent_tasks_internal.rate_limits l"
										  " WHERE l.account = $1 AND l.subject = 'account'",
										  1, argtypes);
	args[0] = CStringGetTextDatum(account);
	if (SPI_execute_plan(account_limit_plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: looking up a rate limit failed");
	return SPI_processed > 0;
}

/* BEFORE INSERT row trigger, for root tasks (see its WHEN clause). */
Datum
at_task_rate_limit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *account;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		elog(ERROR, "task_rate_limit must be a BEFORE INSERT row trigger");

	if (role_bypasses_limits(at_caller_role()))
		return PointerGetDatum(trigdata->tg_trigtuple);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "agent_tasks: SPI_connect failed");

	/*
	 * Without an account count_task_creation() raises the error that says
	 * so; with request.method or JWT claims it has a default or a key's
	 * limit to look at.
	 */
	account = at_session_account();
	if (account == NULL ||
		at_nonempty_setting("request.method") != NULL ||
		at_nonempty_setting("request.jwt.claims") != NULL ||
		account_has_limit(account))
	{
		if (count_plan == NULL)
			count_plan = at_keep_plan("SELECT agent_tasks_internal.count_task_creation()", 0, NULL);
		if (SPI_execute_plan(count_plan, NULL, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "agent_tasks: counting a task creation failed");
	}

	SPI_finish();
	return PointerGetDatum(trigdata->tg_trigtuple);
}
