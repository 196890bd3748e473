/*-------------------------------------------------------------------------
 *
 * task_search.c
 *	  The full-text document of a task (tasks.search, behind the GIN index
 *	  that list_tasks(q => ...) searches): the trigger index_task_text sets
 *	  it when a task is inserted and when its title or prompt change, never
 *	  at a status change.  The document is the English tsvector of the
 *	  title, a space and the prompt, as the generated column of 0.1.0 was.
 *
 *	  In C because it runs at every task creation, as task_rate_limit does
 *	  (rate_limits.c): as PL/pgSQL the two cost 0.07 ms of server CPU per
 *	  task more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "tsearch/ts_utils.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "agent_tasks.h"

PG_FUNCTION_INFO_V1(at_index_task_text);

/* pg_catalog.english: a pinned system object, looked up once per session */
static Oid	english_config = InvalidOid;

static void
append_column(StringInfo document, HeapTuple tuple, TupleDesc desc, int attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

	if (!isnull)
	{
		text	   *t = DatumGetTextPP(value);

		appendBinaryStringInfo(document, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
}

/*
 * BEFORE INSERT and BEFORE UPDATE OF title, prompt trigger on
 * agent_tasks_internal.tasks.
 */
Datum
at_index_task_text(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			title_att;
	int			prompt_att;
	int			search_att;
	StringInfoData document;
	Datum		vector;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		elog(ERROR, "index_task_text must be a BEFORE INSERT or UPDATE row trigger");

	desc = trigdata->tg_relation->rd_att;
	title_att = SPI_fnumber(desc, "title");
	prompt_att = SPI_fnumber(desc, "prompt");
	search_att = SPI_fnumber(desc, "search");
	if (title_att <= 0 || prompt_att <= 0 || search_att <= 0)
		elog(ERROR, "index_task_text needs columns \"title\", \"prompt\" and \"search\"");

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	initStringInfo(&document);
	append_column(&document, tuple, desc, title_att);
	appendStringInfoChar(&document, ' ');
	append_column(&document, tuple, desc, prompt_att);

	if (!OidIsValid(english_config))
		english_config = get_ts_config_oid(list_make2(makeString("pg_catalog"), makeString("english")),
										   false);
	vector = DirectFunctionCall2Coll(to_tsvector_byid, DEFAULT_COLLATION_OID,
									 ObjectIdGetDatum(english_config),
									 PointerGetDatum(cstring_to_text_with_len(document.data, document.len)));

	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &search_att, &vector, &isnull));
}
