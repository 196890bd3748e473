/*-------------------------------------------------------------------------
 *
 * claims.h
 *	  What the executors get from a claim of runs of sql agents (claims.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_CLAIMS_H
#define AGENT_TASKS_CLAIMS_H

#include "utils/uuid.h"

/* A claimed run of an sql agent, and how to call the agent's function. */
typedef struct AtSqlRun
{
	char	   *account;
	pg_uuid_t	run_id;
	pg_uuid_t	task_id;
	char	   *call;			/* SELECT agent_function(t, r) FROM ... */
	Oid			run_as;
	int			timeout_ms;
	Oid			function;		/* the agent function, checked again at the call */
} AtSqlRun;

/*
 * Claim up to max runs for worker; *runs is allocated in the caller's
 * memory context.  Call it inside a transaction with a snapshot and with
 * search_path pinned to pg_catalog, pg_temp, as the SQL functions are.
 */
extern int	at_claim_sql_batch(const char *worker, int max, AtSqlRun **runs);

#endif
