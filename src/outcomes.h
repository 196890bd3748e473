/*-------------------------------------------------------------------------
 *
 * outcomes.h
 *	  Recording an agent's answer (outcomes.c), for the executors.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_OUTCOMES_H
#define AGENT_TASKS_OUTCOMES_H

#include "postgres.h"

/* account: text; run, task: uuid; result: jsonb */
extern void at_finish_sql_run(Datum account, Datum run, Datum task, Datum result, bool result_null);

#endif							/* AGENT_TASKS_OUTCOMES_H */
