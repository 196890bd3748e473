/*-------------------------------------------------------------------------
 *
 * webhook_payload.c
 *	  webhook_task_data(t tasks): what a webhook delivery and a task hook
 *	  say about a task -- its public columns, the agent by name, times in
 *	  ISO 8601 UTC -- as a JSON object; and iso8601(ts), the one format of
 *	  times in every payload.
 *
 *	  In C because every event of an account with hooks or webhooks builds
 *	  it: as a SQL function with a pinned search_path it was parsed again at
 *	  every call, and parsing each t.column of the task row copied the
 *	  table's whole row type with its constraints.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "agent_tasks.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_webhook_task_data);
PG_FUNCTION_INFO_V1(at_iso8601);

/* The payload's members: name, and the column it shows (NULL: the agent). */
static const char *const members[][2] = {
	{"id", "id"}, {"account", "account"}, {"parent_id", "parent_id"}, {"title", "title"},
	{"type", "type"}, {"command", "command"}, {"agent", NULL}, {"status", "status"},
	{"status_reason", "status_reason"}, {"latest_run_id", "latest_run_id"},
	{"external_id", "external_id"}, {"origin", "origin"}, {"labels", "labels"},
	{"metadata", "metadata"}, {"context", "context"}, {"output", "output"}, {"error", "error"},
	{"feedback", "feedback"}, {"created_by", "created_by"}, {"created_at", "created_at"},
	{"updated_at", "updated_at"}
};

static SPIPlanPtr agent_name_plan;

/* A time as YYYY-MM-DDTHH:MI:SS.USZ in UTC (null when not finite). */
static void
append_iso8601(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fsec);
}

/* iso8601(ts timestamptz) RETURNS text */
Datum
at_iso8601(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_iso8601(&buf, PG_GETARG_TIMESTAMPTZ(0));
	if (strcmp(buf.data, "null") == 0)
		PG_RETURN_NULL();
	/* the JSON string without its quotes */
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data + 1, buf.len - 2));
}

/* The agent's name, or NULL. */
static char *
agent_name(Datum account, Datum agent_id)
{
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		values[2] = {account, agent_id};
	MemoryContext caller = CurrentMemoryContext;
	char	   *name = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (agent_name_plan == NULL)
		agent_name_plan = at_keep_plan("SELECT a.name FROM agent_tasks_internal.agents a"
									   " WHERE a.account = $1 AND a.id = $2", 2, types);
	if (SPI_execute_plan(agent_name_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the agent of a task");
	if (SPI_processed == 1)
	{
		char	   *found = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (found != NULL)
			name = MemoryContextStrdup(caller, found);
	}
	SPI_finish();
	return name;
}

Datum
at_webhook_task_data(PG_FUNCTION_ARGS)
{
	HeapTupleHeader header = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(header),
											  HeapTupleHeaderGetTypMod(header));
	HeapTupleData tuple;
	StringInfoData buf;

	tuple.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = header;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < lengthof(members); i++)
	{
		const char *column = members[i][1];
		int			attnum;
		bool		isnull;
		Datum		value;
		Oid			type;

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, members[i][0]);
		appendStringInfoString(&buf, ": ");

		if (column == NULL)
		{
			bool		account_null;
			Datum		account = GetAttributeByName(header, "account", &account_null);
			Datum		agent_id = GetAttributeByName(header, "agent_id", &isnull);
			char	   *name = (isnull || account_null) ? NULL : agent_name(account, agent_id);

			if (name == NULL)
				appendStringInfoString(&buf, "null");
			else
				escape_json(&buf, name);
			continue;
		}

		attnum = SPI_fnumber(desc, column);
		if (attnum <= 0)
			elog(ERROR, "column \"%s\" not found in the task row", column);
		value = heap_getattr(&tuple, attnum, desc, &isnull);
		if (isnull)
		{
			appendStringInfoString(&buf, "null");
			continue;
		}
		type = TupleDescAttr(desc, attnum - 1)->atttypid;
		if (type == JSONBOID)
			appendStringInfoString(&buf, JsonbToCString(NULL, &DatumGetJsonbP(value)->root, 0));
		else if (type == TIMESTAMPTZOID)
			append_iso8601(&buf, DatumGetTimestampTz(value));
		else if (type == TEXTARRAYOID)
			appendStringInfoString(&buf, TextDatumGetCString(DirectFunctionCall1(array_to_json, value)));
		else
		{
			Oid			output;
			bool		varlena;

			getTypeOutputInfo(type, &output, &varlena);
			escape_json(&buf, OidOutputFunctionCall(output, value));
		}
	}
	appendStringInfoChar(&buf, '}');
	ReleaseTupleDesc(desc);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
