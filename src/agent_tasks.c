/*-------------------------------------------------------------------------
 *
 * agent_tasks.c
 *	  Module entry point: the extension's settings (GUCs), all defined here
 *	  and nowhere else, under a reserved "agent_tasks." prefix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "agent_tasks.h"

PG_MODULE_MAGIC;

char	   *agent_tasks_account = NULL;
char	   *agent_tasks_user = NULL;
int			agent_tasks_max_items = 10;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("agent_tasks.account",
							   "Account (tenant) of SQL callers.",
							   "Row-level security shows and changes only this account's rows. "
							   "PostgREST callers take it from the JWT claim \"account\" instead.",
							   &agent_tasks_account,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("agent_tasks.user",
							   "E-mail address of the person acting in SQL sessions.",
							   "Used for \"mine\", owners, created_by and the actor of activities. "
							   "PostgREST callers take it from the JWT claim \"email\" (or \"sub\").",
							   &agent_tasks_user,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.max_items",
							"Maximum number of items of a command-mode task.",
							"Each item becomes a child task; more items are refused with PT400.",
							&agent_tasks_max_items,
							10,
							1, 10000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("agent_tasks");
}
