/*-------------------------------------------------------------------------
 *
 * claims.c
 *	  Claiming queued runs: agent_tasks_internal.claim_batch(), used by the
 *	  executors (sql), the HTTP dispatcher (http, openai) and external
 *	  workers through claim_runs().
 *
 *	  A claim costs what it can take, not what waits in the queue:
 *	  - runs are found per agent, through the index of each agent's queued
 *	    runs in claim order, so other agents' and accounts' backlogs are
 *	    never read;
 *	  - unless it names its agents, a claim looks only at the agents that
 *	    have queued runs, so idle agents cost nothing;
 *	  - an agent at its concurrency limit is passed over after counting its
 *	    runs in progress (at most its limit), whatever its backlog;
 *	  - each agent contributes at most as many candidates as it has free
 *	    slots, and a batch looks at a bounded number of candidates, so runs
 *	    whose task or parent someone holds locked cost a bounded number of
 *	    SKIP LOCKED attempts and never a wait.
 *	  Concurrency limits are exact without serializing all claimers: a
 *	  claimer takes an agent's slots only under a transaction-level advisory
 *	  lock on that agent, and counts the agent's runs in progress once it
 *	  holds it.  Claimers of different agents never meet.  The agents of
 *	  the first candidates are locked in one order (no deadlock); a claimer
 *	  that had to wait looks for candidates again, so it takes what the
 *	  other left.  Agents met later are only tried, and passed over when
 *	  busy.
 *
 *	  For the executors, at_claim_sql_batch() (claim_sql_runs() in SQL) adds
 *	  to each claimed run how to call its agent's function, resolved from
 *	  the agent's target without ever raising: a run whose function or role
 *	  is gone, or whose function is owned by a role that could not act as
 *	  the agent's, fails instead.  Executors call it directly, not through
 *	  SQL: the two set-returning layers it replaced (claim_sql_runs() over
 *	  claim_batch(), each with a pinned search_path) took 0.1 ms of the
 *	  1.45 ms from a commit to its run's start being visible to others.
 *
 *	  Locks are taken in the extension's one order, ancestors -> task ->
 *	  run, all with SKIP LOCKED, so a claim never waits for a lock nor
 *	  deadlocks with a stop or cancel.  Every statement is planned once per
 *	  session (SPI_keepplan).  What a claimed run then does is up to the
 *	  caller; what a status change sets off is the transitions' business.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "utils/varlena.h"
#include "utils/uuid.h"

#include "agent_tasks.h"
#include "claims.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_claim_batch);
PG_FUNCTION_INFO_V1(at_claim_sql_runs);

/*
 * Candidates: for each agent of the wanted kinds (of one account and one
 * list of agents, when given) with free slots, its first queued runnable
 * runs, as many as it has slots; and runs without an agent (external runs
 * of tasks without one, or runs whose agent was dropped while they
 * waited).  In claim order, at most $5 of them.  "with" and "agents" say
 * which agents are looked at.
 */
#define CANDIDATES_SQL(with, agents) \
with \
"SELECT c.account, c.id, c.agent_id FROM (" \
"  SELECT x.account, x.id, a.id AS agent_id, x.priority, x.due_at" \
"    FROM " agents \
"   CROSS JOIN LATERAL (SELECT a.concurrency - (SELECT count(*) FROM agent_tasks_internal.runs y" \
"                        WHERE y.account = a.account AND y.agent_id = a.id" \
"                          AND y.status = 'in_progress') AS free) f" \
"   CROSS JOIN LATERAL (SELECT x.account, x.id, x.priority, x.due_at" \
"                         FROM agent_tasks_internal.runs x" \
"                        WHERE x.account = a.account AND x.agent_id = a.id" \
"                          AND x.status = 'queued' AND x.due_at <= pg_catalog.now()" \
"                        ORDER BY x.priority DESC, x.due_at, x.id" \
"                        LIMIT LEAST(f.free, $4)) x" \
"   WHERE a.kind = ANY ($1) AND ($2::text IS NULL OR a.account = $2)" \
"     AND ($3::uuid[] IS NULL OR a.id = ANY ($3)) AND f.free > 0" \
"  UNION ALL" \
"  SELECT x.account, x.id, NULL, x.priority, x.due_at" \
"    FROM (SELECT x.account, x.id, x.priority, x.due_at" \
"            FROM agent_tasks_internal.runs x" \
"           WHERE x.agent_id IS NULL AND x.status = 'queued' AND x.kind = ANY ($1)" \
"             AND x.due_at <= pg_catalog.now()" \
"             AND ($2::text IS NULL OR x.account = $2) AND $3::uuid[] IS NULL" \
"           ORDER BY x.priority DESC, x.due_at, x.id" \
"           LIMIT $4) x" \
") c ORDER BY c.priority DESC, c.due_at, c.id LIMIT $5"

/* A claim for named agents (claim_runs(worker, agents)): those. */
static const char *candidates_sql =
CANDIDATES_SQL("", "agent_tasks_internal.agents a");

/*
 * A claim in every account (executors, the dispatcher): only the agents
 * that have queued runs, found by skipping through the index of queued runs
 * from one agent to the next, so that the thousands of idle agents of a
 * large installation cost nothing (every agent was looked at before: 14 ms
 * a claim with 10,000 of them).  Each agent is then looked up by its key
 * (LIMIT 1 keeps the planner from joining through all of an account's
 * agents instead).
 */
static const char *candidates_everywhere_sql =
CANDIDATES_SQL(
"WITH RECURSIVE waiting(account, agent_id) AS ("
"  (SELECT x.account, x.agent_id FROM agent_tasks_internal.runs x"
"    WHERE x.status = 'queued' AND x.agent_id IS NOT NULL"
"    ORDER BY x.account, x.agent_id LIMIT 1)"
"  UNION ALL"
"  SELECT n.account, n.agent_id FROM waiting w"
"   CROSS JOIN LATERAL (SELECT x.account, x.agent_id FROM agent_tasks_internal.runs x"
"                        WHERE x.status = 'queued' AND x.agent_id IS NOT NULL"
"                          AND (x.account, x.agent_id) > (w.account, w.agent_id)"
"                        ORDER BY x.account, x.agent_id LIMIT 1) n"
") ",
"waiting w CROSS JOIN LATERAL (SELECT a.* FROM agent_tasks_internal.agents a"
"                               WHERE a.account = w.account AND a.id = w.agent_id LIMIT 1) a");

/* The same within one account (claim_runs() without a list of agents). */
static const char *candidates_in_account_sql =
CANDIDATES_SQL(
"WITH RECURSIVE waiting(agent_id) AS ("
"  (SELECT x.agent_id FROM agent_tasks_internal.runs x"
"    WHERE x.account = $2 AND x.status = 'queued' AND x.agent_id IS NOT NULL"
"    ORDER BY x.agent_id LIMIT 1)"
"  UNION ALL"
"  SELECT n.agent_id FROM waiting w"
"   CROSS JOIN LATERAL (SELECT x.agent_id FROM agent_tasks_internal.runs x"
"                        WHERE x.account = $2 AND x.status = 'queued' AND x.agent_id IS NOT NULL"
"                          AND x.agent_id > w.agent_id"
"                        ORDER BY x.agent_id LIMIT 1) n"
") ",
"waiting w CROSS JOIN LATERAL (SELECT a.* FROM agent_tasks_internal.agents a"
"                               WHERE a.account = $2 AND a.id = w.agent_id LIMIT 1) a");

/* An agent's claim lock: tried, or waited for. */
static const char *try_lock_agent_sql =
"SELECT pg_catalog.pg_try_advisory_xact_lock("
"         pg_catalog.hashtextextended('agent_tasks.claim:' || $1 || ':' || $2::text, 0))";
static const char *lock_agent_sql =
"SELECT pg_catalog.pg_advisory_xact_lock("
"         pg_catalog.hashtextextended('agent_tasks.claim:' || $1 || ':' || $2::text, 0))";

/* An agent's free slots (its concurrency less its runs in progress). */
static const char *agent_slots_sql =
"SELECT a.concurrency - (SELECT count(*)::integer FROM agent_tasks_internal.runs y"
"                         WHERE y.account = a.account AND y.agent_id = a.id"
"                           AND y.status = 'in_progress')"
"  FROM agent_tasks_internal.agents a WHERE a.account = $1 AND a.id = $2";

/* Take a candidate: still queued and due, run and task not locked by others. */
static const char *lock_run_sql =
"SELECT t.parent_id,"
"       x.status_reason IS DISTINCT FROM 'resumed'"
"         AND pg_catalog.num_nonnulls(t.budget_tokens, t.budget_cost, a.budget_tokens, a.budget_cost) > 0"
"         AS check_budget,"
"       x.task_id"
"  FROM agent_tasks_internal.runs x"
"  JOIN agent_tasks_internal.tasks t ON t.account = x.account AND t.id = x.task_id"
"  LEFT JOIN agent_tasks_internal.agents a ON a.account = x.account AND a.id = x.agent_id"
" WHERE x.account = $1 AND x.id = $2 AND x.status = 'queued' AND x.due_at <= pg_catalog.now()"
"   FOR UPDATE OF x, t SKIP LOCKED";

/* Whether every ancestor of a task could be locked (SKIP LOCKED). */
static const char *lock_ancestors_sql =
"WITH RECURSIVE up(id) AS ("
"  SELECT $2::uuid"
"  UNION ALL"
"  SELECT p.parent_id FROM up JOIN agent_tasks_internal.tasks p ON p.account = $1 AND p.id = up.id"
"   WHERE p.parent_id IS NOT NULL"
") SELECT (SELECT count(*) FROM (SELECT 1 FROM agent_tasks_internal.tasks x"
"                                 WHERE x.account = $1 AND x.id IN (SELECT id FROM up)"
"                                   FOR UPDATE SKIP LOCKED) l) = (SELECT count(*) FROM up)";

/* A run over its budget waits on hold instead of starting. */
static const char *hold_if_over_budget_sql =
"UPDATE agent_tasks_internal.runs x SET status = 'on_hold', status_reason = 'budget_exceeded'"
" WHERE x.account = $1 AND x.id = $2 AND agent_tasks_internal.over_budget($1, $3)"
" RETURNING true";

/*
 * Start the taken runs, all in one statement, each under its lease: the
 * one asked for, else the agent's timeout and a minute.  The run's kind
 * follows its agent, so a run row naming the wrong kind is executed by the
 * agent's own worker type instead of stopping another's claims.
 */
static const char *start_runs_sql =
"UPDATE agent_tasks_internal.runs x"
"   SET status = 'in_progress', status_reason = NULL, worker = $3,"
"       kind = coalesce((SELECT a.kind FROM agent_tasks_internal.agents a"
"                         WHERE a.account = x.account AND a.id = x.agent_id), x.kind),"
"       started_at = pg_catalog.now(), heartbeat_at = pg_catalog.now(),"
"       lease_expires_at = pg_catalog.now() + coalesce($4,"
"           (SELECT a.timeout FROM agent_tasks_internal.agents a"
"             WHERE a.account = x.account AND a.id = x.agent_id) + interval '1 minute',"
"           interval '5 minutes')"
"  FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::uuid[])) WITH ORDINALITY AS c(account, id, n)"
" WHERE x.account = c.account AND x.id = c.id"
" RETURNING c.n, x";

typedef struct ClaimPlans
{
	SPIPlanPtr	candidates;
	SPIPlanPtr	candidates_everywhere;
	SPIPlanPtr	candidates_in_account;
	SPIPlanPtr	try_lock_agent;
	SPIPlanPtr	lock_agent;
	SPIPlanPtr	agent_slots;
	SPIPlanPtr	lock_run;
	SPIPlanPtr	lock_ancestors;
	SPIPlanPtr	hold_if_over_budget;
	SPIPlanPtr	start_runs;
} ClaimPlans;

static ClaimPlans plans;

static void
prepare_plans(void)
{
	Oid			candidates_args[] = {TEXTARRAYOID, TEXTOID, UUIDARRAYOID, INT4OID, INT4OID};
	Oid			run_args[] = {TEXTOID, UUIDOID};
	Oid			budget_args[] = {TEXTOID, UUIDOID, UUIDOID};
	Oid			start_args[] = {TEXTARRAYOID, UUIDARRAYOID, TEXTOID, INTERVALOID};

	if (plans.start_runs != NULL)
		return;
	plans.candidates = at_keep_plan(candidates_sql, 5, candidates_args);
	plans.candidates_everywhere = at_keep_plan(candidates_everywhere_sql, 5, candidates_args);
	plans.candidates_in_account = at_keep_plan(candidates_in_account_sql, 5, candidates_args);
	plans.try_lock_agent = at_keep_plan(try_lock_agent_sql, 2, run_args);
	plans.lock_agent = at_keep_plan(lock_agent_sql, 2, run_args);
	plans.agent_slots = at_keep_plan(agent_slots_sql, 2, run_args);
	plans.lock_run = at_keep_plan(lock_run_sql, 2, run_args);
	plans.lock_ancestors = at_keep_plan(lock_ancestors_sql, 2, run_args);
	plans.hold_if_over_budget = at_keep_plan(hold_if_over_budget_sql, 3, budget_args);
	plans.start_runs = at_keep_plan(start_runs_sql, 4, start_args);
}

/* A claim candidate, copied out of SPI's memory. */
typedef struct Candidate
{
	char	   *account;
	pg_uuid_t	run_id;
	bool		has_agent;
	pg_uuid_t	agent_id;
} Candidate;

/* An agent met in this batch: whether we hold its lock, its free slots. */
typedef struct AgentSlots
{
	char	   *account;
	pg_uuid_t	agent_id;
	bool		locked;
	bool		busy;			/* another claimer holds it: pass over */
	int			free;			/* -1 until counted */
} AgentSlots;

static int
compare_agents(const ListCell *a, const ListCell *b)
{
	AgentSlots *x = lfirst(a);
	AgentSlots *y = lfirst(b);
	int			c = strcmp(x->account, y->account);

	return c != 0 ? c : memcmp(&x->agent_id, &y->agent_id, sizeof(pg_uuid_t));
}

static AgentSlots *
find_agent(List **agents, const char *account, pg_uuid_t *agent_id)
{
	ListCell   *lc;
	AgentSlots *slots;

	foreach(lc, *agents)
	{
		slots = lfirst(lc);
		if (strcmp(slots->account, account) == 0 &&
			memcmp(&slots->agent_id, agent_id, sizeof(pg_uuid_t)) == 0)
			return slots;
	}
	slots = palloc0(sizeof(AgentSlots));
	slots->account = pstrdup(account);
	slots->agent_id = *agent_id;
	slots->free = -1;
	*agents = lappend(*agents, slots);
	return slots;
}

/* Take an agent's claim lock, waiting for it or not; whether it is held. */
static bool
lock_agent(AgentSlots *slots, bool wait)
{
	Datum		args[2];
	bool		isnull;

	args[0] = CStringGetTextDatum(slots->account);
	args[1] = UUIDPGetDatum(&slots->agent_id);
	if (SPI_execute_plan(wait ? plans.lock_agent : plans.try_lock_agent, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "agent_tasks: taking an agent's claim lock failed");
	slots->locked = wait ||
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	slots->busy = !slots->locked;
	return slots->locked;
}

/* Count an agent's free slots, once its lock is held. */
static void
count_slots(AgentSlots *slots)
{
	Datum		args[2];
	bool		isnull;
	Datum		free;

	args[0] = CStringGetTextDatum(slots->account);
	args[1] = UUIDPGetDatum(&slots->agent_id);
	if (SPI_execute_plan(plans.agent_slots, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: counting an agent's runs failed");
	slots->free = 0;
	if (SPI_processed == 1)
	{
		free = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			slots->free = DatumGetInt32(free);
	}
}

/* The candidates, in claim order. */
static int
find_candidates(SPIPlanPtr plan, Datum *args, char *nulls, Candidate **candidates)
{
	int			n;
	int			i;

	if (SPI_execute_plan(plan, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: finding runs to claim failed");
	n = (int) SPI_processed;
	*candidates = palloc(sizeof(Candidate) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Candidate  *c = &(*candidates)[i];
		bool		isnull;
		Datum		agent;

		c->account = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
		c->run_id = *DatumGetUUIDP(SPI_getbinval(tuple, desc, 2, &isnull));
		agent = SPI_getbinval(tuple, desc, 3, &isnull);
		c->has_agent = !isnull;
		if (c->has_agent)
			c->agent_id = *DatumGetUUIDP(agent);
	}
	return n;
}

/*
 * Lock a candidate run, its task and the task's ancestors; false if taken
 * (or put on hold over its budget).  SPI keeps every result until
 * SPI_finish, so the first row's values stay valid across the statements.
 */
static bool
take_run(const char *account, pg_uuid_t *run_id)
{
	Datum		args[3];
	bool		no_parent;
	bool		isnull;
	HeapTuple	run;
	TupleDesc	desc;

	args[0] = CStringGetTextDatum(account);
	args[1] = UUIDPGetDatum(run_id);
	if (SPI_execute_plan(plans.lock_run, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: locking a run failed");
	if (SPI_processed != 1)
		return false;
	run = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	args[1] = SPI_getbinval(run, desc, 1, &no_parent);
	if (!no_parent)
	{
		if (SPI_execute_plan(plans.lock_ancestors, args, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "agent_tasks: locking a task's ancestors failed");
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			return false;
	}

	if (DatumGetBool(SPI_getbinval(run, desc, 2, &isnull)))
	{
		args[1] = UUIDPGetDatum(run_id);
		args[2] = SPI_getbinval(run, desc, 3, &isnull);
		if (SPI_execute_plan(plans.hold_if_over_budget, args, NULL, false, 1) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "agent_tasks: checking a run's budget failed");
		if (SPI_processed == 1)
			return false;
	}
	return true;
}

/* What to claim: runs of agents of these kinds, for one worker. */
typedef struct ClaimRequest
{
	Datum		kinds;			/* text[] */
	NullableDatum account;		/* text: only this account's runs */
	NullableDatum agents;		/* uuid[]: only these agents' runs */
	Datum		worker;			/* text */
	NullableDatum lease;		/* interval; NULL: the agent's timeout and a minute */
	int			max;
} ClaimRequest;

/*
 * Claim up to request->max runnable runs in claim order (priority, then due
 * time); connected to SPI.  Returns how many were started, their rows (of
 * runs) copied into result_context, in claim order.
 */
static int
claim(const ClaimRequest *request, MemoryContext result_context, HeapTupleHeader **result)
{
	Datum		candidate_args[5];
	char		candidate_nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			ncandidates;
	Candidate  *candidates;
	bool		waited = false;
	ListCell   *lc;
	Datum	   *taken_accounts;
	Datum	   *taken_ids;
	int			ntaken = 0;
	List	   *agent_list = NIL;
	int			nstarted = 0;
	int			max = request->max;
	int			i;
	SPIPlanPtr	candidates_plan;

	prepare_plans();
	candidates_plan = !request->agents.isnull ? plans.candidates :
		request->account.isnull ? plans.candidates_everywhere : plans.candidates_in_account;

	/* Enough candidates to fill the batch when some are taken by others. */
	candidate_args[0] = request->kinds;
	candidate_args[1] = request->account.value;
	candidate_nulls[1] = request->account.isnull ? 'n' : ' ';
	candidate_args[2] = request->agents.value;
	candidate_nulls[2] = request->agents.isnull ? 'n' : ' ';
	candidate_args[3] = Int32GetDatum(max);
	candidate_args[4] = Int32GetDatum(max * 2 + 16);
	ncandidates = find_candidates(candidates_plan, candidate_args, candidate_nulls, &candidates);

	/*
	 * Lock the agents of these candidates in one order.  Having waited for
	 * one means another claimer just took runs: look again.
	 */
	for (i = 0; i < ncandidates; i++)
		if (candidates[i].has_agent)
			(void) find_agent(&agent_list, candidates[i].account, &candidates[i].agent_id);
	list_sort(agent_list, compare_agents);
	foreach(lc, agent_list)
	{
		AgentSlots *slots = lfirst(lc);

		if (!lock_agent(slots, false))
		{
			(void) lock_agent(slots, true);
			waited = true;
		}
	}
	if (waited)
		ncandidates = find_candidates(candidates_plan, candidate_args, candidate_nulls, &candidates);

	taken_accounts = palloc(sizeof(Datum) * Max(ncandidates, 1));
	taken_ids = palloc(sizeof(Datum) * Max(ncandidates, 1));
	for (i = 0; i < ncandidates && ntaken < max; i++)
	{
		Candidate  *c = &candidates[i];
		AgentSlots *slots = NULL;

		CHECK_FOR_INTERRUPTS();
		if (c->has_agent)
		{
			slots = find_agent(&agent_list, c->account, &c->agent_id);
			if (slots->busy || (!slots->locked && !lock_agent(slots, false)))
				continue;
			if (slots->free < 0)
				count_slots(slots);
			if (slots->free <= 0)
				continue;
		}
		if (!take_run(c->account, &c->run_id))
			continue;
		if (slots != NULL)
			slots->free--;
		taken_accounts[ntaken] = CStringGetTextDatum(c->account);
		taken_ids[ntaken] = UUIDPGetDatum(&c->run_id);
		ntaken++;
	}

	*result = MemoryContextAllocZero(result_context, sizeof(HeapTupleHeader) * Max(ntaken, 1));
	if (ntaken > 0)
	{
		Datum		start_args[4];
		char		start_nulls[4] = {' ', ' ', ' ', ' '};
		uint64		n;

		start_args[0] = PointerGetDatum(construct_array(taken_accounts, ntaken, TEXTOID, -1, false, TYPALIGN_INT));
		start_args[1] = PointerGetDatum(construct_array(taken_ids, ntaken, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		start_args[2] = request->worker;
		start_args[3] = request->lease.value;
		start_nulls[3] = request->lease.isnull ? 'n' : ' ';
		if (SPI_execute_plan(plans.start_runs, start_args, start_nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "agent_tasks: starting claimed runs failed");

		/* Back in claim order, copied out of SPI's memory. */
		for (n = 0; n < SPI_processed; n++)
		{
			bool		isnull;
			int64		position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[n], SPI_tuptable->tupdesc, 1, &isnull));
			Datum		row = SPI_getbinval(SPI_tuptable->vals[n], SPI_tuptable->tupdesc, 2, &isnull);
			MemoryContext old = MemoryContextSwitchTo(result_context);

			(*result)[position - 1] = DatumGetHeapTupleHeaderCopy(row);
			MemoryContextSwitchTo(old);
		}
		/* a run the UPDATE did not return leaves a gap */
		for (i = 0; i < ntaken; i++)
			if ((*result)[i] != NULL)
				(*result)[nstarted++] = (*result)[i];
	}
	return nstarted;
}

/*
 * claim_batch(kinds text[], account text, agents uuid[], worker text,
 *			   lease interval, max integer) RETURNS SETOF runs
 *
 * Claim up to max runnable runs of agents of these kinds (of one account
 * and some of its agents, when given) for a worker, in claim order
 * (priority, then due time).  NULL lease: each agent's timeout plus a
 * minute.
 */
Datum
at_claim_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ClaimRequest request;
	HeapTupleHeader *started;
	int			n;
	int			i;
	MemoryContext call_context = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(3) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("claim_batch needs kinds, a worker and a maximum")));
	request.kinds = PG_GETARG_DATUM(0);
	request.account.isnull = PG_ARGISNULL(1);
	request.account.value = request.account.isnull ? (Datum) 0 : PG_GETARG_DATUM(1);
	request.agents.isnull = PG_ARGISNULL(2);
	request.agents.value = request.agents.isnull ? (Datum) 0 : PG_GETARG_DATUM(2);
	request.worker = PG_GETARG_DATUM(3);
	request.lease.isnull = PG_ARGISNULL(4);
	request.lease.value = request.lease.isnull ? (Datum) 0 : PG_GETARG_DATUM(4);
	request.max = PG_GETARG_INT32(5);

	InitMaterializedSRF(fcinfo, 0);
	if (request.max <= 0)
		return (Datum) 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "agent_tasks: SPI_connect failed");
	n = claim(&request, call_context, &started);
	for (i = 0; i < n; i++)
	{
		HeapTupleData tuple;

		tuple.t_len = HeapTupleHeaderGetDatumLength(started[i]);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = started[i];
		tuplestore_puttuple(rsinfo->setResult, &tuple);
	}
	SPI_finish();
	return (Datum) 0;
}

/* The agent of a claimed run, as claim_sql_runs() needs it. */
static const char *agent_of_run_sql =
"SELECT a.target, a.run_as, (EXTRACT(epoch FROM a.timeout) * 1000)::integer"
"  FROM agent_tasks_internal.agents a WHERE a.account = $1 AND a.id = $2";

static const char *fail_claimed_run_sql =
"SELECT agent_tasks_internal.fail_attempt(r,"
"         pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
"           'message', $3::text, 'sqlstate', $4::text, 'detail', $5::text, 'hint', $6::text)),"
"         $7, false)"
"  FROM agent_tasks_internal.runs r WHERE r.account = $1 AND r.id = $2";

static SPIPlanPtr agent_of_run_plan;
static SPIPlanPtr fail_claimed_run_plan;

/*
 * The function an sql agent's target names, taking the rows of the views
 * agent_tasks.tasks and agent_tasks.runs; InvalidOid when there is none.
 * Never raises: the target is split here, not parsed as SQL.
 */
static Oid
agent_function(const char *target)
{
	Oid			nsp = get_namespace_oid("agent_tasks", true);
	Oid			argtypes[2];
	char	   *copy = pstrdup(target);
	List	   *parts = NIL;
	List	   *names = NIL;
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return InvalidOid;
	argtypes[0] = get_rel_type_id(get_relname_relid("tasks", nsp));
	argtypes[1] = get_rel_type_id(get_relname_relid("runs", nsp));
	if (!OidIsValid(argtypes[0]) || !OidIsValid(argtypes[1]))
		return InvalidOid;
	if (!SplitIdentifierString(copy, '.', &parts) || list_length(parts) != 2)
		return InvalidOid;
	foreach(lc, parts)
		names = lappend(names, makeString((char *) lfirst(lc)));
	return LookupFuncName(names, 2, argtypes, true);
}

/* Fail a claimed run that cannot be executed, with the error it gets. */
static void
fail_claimed_run(Datum account, Datum run_id, const char *message, const char *sqlstate,
				 const char *detail, const char *hint, const char *reason)
{
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = account;
	args[1] = run_id;
	args[2] = CStringGetTextDatum(message);
	args[3] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	nulls[3] = sqlstate ? ' ' : 'n';
	args[4] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	nulls[4] = detail ? ' ' : 'n';
	args[5] = hint ? CStringGetTextDatum(hint) : (Datum) 0;
	nulls[5] = hint ? ' ' : 'n';
	args[6] = CStringGetTextDatum(reason);
	if (SPI_execute_plan(fail_claimed_run_plan, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: failing a claimed run failed");
}

/* An agent met in a batch of sql runs: what calling it needs. */
typedef struct SqlAgent
{
	char	   *account;
	pg_uuid_t	id;
	char	   *target;			/* NULL when the agent is gone */
	char	   *run_as_name;
	int			timeout_ms;
	Oid			function;		/* InvalidOid when there is none */
	Oid			run_as;			/* InvalidOid when the role is gone */
} SqlAgent;

/* The agent of a run, looked up and resolved once per batch. */
static SqlAgent *
sql_agent(List **agents, Datum account, Datum agent_id)
{
	char	   *account_name = TextDatumGetCString(account);
	pg_uuid_t  *id = DatumGetUUIDP(agent_id);
	SqlAgent   *agent;
	ListCell   *lc;
	Datum		args[2];

	foreach(lc, *agents)
	{
		agent = lfirst(lc);
		if (strcmp(agent->account, account_name) == 0 && memcmp(&agent->id, id, sizeof(pg_uuid_t)) == 0)
			return agent;
	}
	agent = palloc0(sizeof(SqlAgent));
	agent->account = account_name;
	agent->id = *id;
	args[0] = account;
	args[1] = agent_id;
	if (SPI_execute_plan(agent_of_run_plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "agent_tasks: reading a claimed run's agent failed");
	if (SPI_processed == 1)
	{
		bool		isnull;

		agent->target = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		agent->run_as_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		agent->timeout_ms = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	}
	agent->function = agent->target ? agent_function(agent->target) : InvalidOid;
	agent->run_as = agent->run_as_name ? get_role_oid(agent->run_as_name, true) : InvalidOid;
	*agents = lappend(*agents, agent);
	return agent;
}

/*
 * Claim up to max runs of sql agents for a worker and say how to call each
 * (see claims.h).  The runs that cannot be executed -- their function or
 * role gone, or the function owned by a role that could not act as the
 * agent's -- fail instead and are not returned.  The call reads the task
 * and the run through the views, as the agent's function takes them, each
 * by its key: a plan kept from when the tables were small must not join
 * the other way round, through all of an account's tasks.
 */
int
at_claim_sql_batch(const char *worker, int max, AtSqlRun **runs)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ClaimRequest request;
	Datum		kind = CStringGetTextDatum("sql");
	HeapTupleHeader *started;
	TupleDesc	desc = NULL;
	int			account_att = 0;
	int			id_att = 0;
	int			task_id_att = 0;
	int			agent_id_att = 0;
	List	   *agents = NIL;
	int			nstarted;
	int			n = 0;
	int			i;

	*runs = NULL;
	if (max <= 0)
		return 0;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "agent_tasks: SPI_connect failed");
	if (fail_claimed_run_plan == NULL)
	{
		Oid			agent_args[] = {TEXTOID, UUIDOID};
		Oid			fail_args[] = {TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

		agent_of_run_plan = at_keep_plan(agent_of_run_sql, 2, agent_args);
		fail_claimed_run_plan = at_keep_plan(fail_claimed_run_sql, 7, fail_args);
	}

	request.kinds = PointerGetDatum(construct_array(&kind, 1, TEXTOID, -1, false, TYPALIGN_INT));
	request.account.isnull = true;
	request.agents.isnull = true;
	request.worker = CStringGetTextDatum(worker);
	request.lease.isnull = true;
	request.max = max;
	nstarted = claim(&request, CurrentMemoryContext, &started);
	*runs = MemoryContextAllocZero(caller_context, sizeof(AtSqlRun) * Max(nstarted, 1));

	for (i = 0; i < nstarted; i++)
	{
		HeapTupleData row;
		bool		isnull;
		Datum		account;
		Datum		run_id;
		Datum		task_id;
		Datum		agent_id;
		SqlAgent   *agent = NULL;
		HeapTuple	proc;
		Form_pg_proc form;
		AtSqlRun   *out;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (desc == NULL)
		{
			desc = lookup_rowtype_tupdesc_copy(HeapTupleHeaderGetTypeId(started[i]),
											   HeapTupleHeaderGetTypMod(started[i]));
			account_att = SPI_fnumber(desc, "account");
			id_att = SPI_fnumber(desc, "id");
			task_id_att = SPI_fnumber(desc, "task_id");
			agent_id_att = SPI_fnumber(desc, "agent_id");
		}
		row.t_len = HeapTupleHeaderGetDatumLength(started[i]);
		ItemPointerSetInvalid(&row.t_self);
		row.t_tableOid = InvalidOid;
		row.t_data = started[i];
		account = heap_getattr(&row, account_att, desc, &isnull);
		run_id = heap_getattr(&row, id_att, desc, &isnull);
		task_id = heap_getattr(&row, task_id_att, desc, &isnull);
		agent_id = heap_getattr(&row, agent_id_att, desc, &isnull);
		if (!isnull)
			agent = sql_agent(&agents, account, agent_id);

		proc = agent != NULL && OidIsValid(agent->function) ?
			SearchSysCache1(PROCOID, ObjectIdGetDatum(agent->function)) : NULL;
		if (proc == NULL || !HeapTupleIsValid(proc))
		{
			fail_claimed_run(account, run_id,
							 psprintf("agent function %s does not exist",
									  agent != NULL && agent->target != NULL ? agent->target : "(none)"),
							 NULL, NULL, NULL, "error");
			continue;
		}
		form = (Form_pg_proc) GETSTRUCT(proc);
		if (!OidIsValid(agent->run_as))
		{
			ReleaseSysCache(proc);
			fail_claimed_run(account, run_id,
							 psprintf("role %s of the agent does not exist",
									  agent->run_as_name ? agent->run_as_name : "(none)"),
							 NULL, NULL, NULL, "error");
			continue;
		}
		/* the owner could make the function do anything as run_as (bind_agent_role) */
		if (!has_privs_of_role(form->proowner, agent->run_as))
		{
			const char *owner = GetUserNameFromId(form->proowner, true);

			ReleaseSysCache(proc);
			fail_claimed_run(account, run_id,
							 "the agent function is not owned by the role the agent runs as; it was not executed",
							 "PT403",
							 psprintf("function %s is owned by %s; the agent runs as %s", agent->target,
									  owner ? quote_identifier(owner) : "?", agent->run_as_name),
							 psprintf("ALTER FUNCTION %s(agent_tasks.tasks, agent_tasks.runs) OWNER TO %s, or have its owner alter the agent's target.",
									  agent->target, quote_identifier(agent->run_as_name)),
							 "rejected");
			continue;
		}

		old = MemoryContextSwitchTo(caller_context);
		out = &(*runs)[n++];
		out->account = TextDatumGetCString(account);
		out->run_id = *DatumGetUUIDP(run_id);
		out->task_id = *DatumGetUUIDP(task_id);
		out->call = psprintf("SELECT %s(t, r) FROM agent_tasks.tasks t, agent_tasks.runs r"
							 " WHERE r.account = $1 AND r.id = $2"
							 "   AND t.account = $1 AND t.id = $3",
							 quote_qualified_identifier(get_namespace_name(form->pronamespace),
														NameStr(form->proname)));
		out->run_as = agent->run_as;
		out->timeout_ms = agent->timeout_ms;
		out->function = agent->function;
		MemoryContextSwitchTo(old);
		ReleaseSysCache(proc);
	}

	SPI_finish();
	return n;
}

/*
 * agent_tasks_internal.claim_sql_runs(worker text, max integer,
 *	   OUT account text, OUT run_id uuid, OUT task_id uuid, OUT call text,
 *	   OUT run_as oid, OUT timeout_ms integer, OUT function oid)
 *	   RETURNS SETOF record
 *
 * at_claim_sql_batch() for SQL callers: the regression tests claim as the
 * executors do without running the agents.
 */
Datum
at_claim_sql_runs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AtSqlRun   *runs;
	int			n;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("claim_sql_runs needs a worker and a maximum")));
	InitMaterializedSRF(fcinfo, 0);
	n = at_claim_sql_batch(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_INT32(1), &runs);
	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(runs[i].account);
		values[1] = UUIDPGetDatum(&runs[i].run_id);
		values[2] = UUIDPGetDatum(&runs[i].task_id);
		values[3] = CStringGetTextDatum(runs[i].call);
		values[4] = ObjectIdGetDatum(runs[i].run_as);
		values[5] = Int32GetDatum(runs[i].timeout_ms);
		values[6] = ObjectIdGetDatum(runs[i].function);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
