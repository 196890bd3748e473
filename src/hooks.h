/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  Task hooks (src/hooks.c), fired by the transition path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_HOOKS_H
#define AGENT_TASKS_HOOKS_H

#include "postgres.h"

#include "utils/uuid.h"

extern void at_fire_hooks(const char *account, const pg_uuid_t *task, const char *event,
						  const char *previous_status, Datum extra);

#endif							/* AGENT_TASKS_HOOKS_H */
