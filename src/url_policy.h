/*-------------------------------------------------------------------------
 *
 * url_policy.h
 *	  The outbound URL policy (SSRF protection) shared by the SQL check at
 *	  registration (agent_tasks_internal.url_policy_violation) and the
 *	  dispatcher's connect-time check of every resolved address.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_URL_POLICY_H
#define AGENT_TASKS_URL_POLICY_H

#include "postgres.h"

#include <sys/socket.h>

#include "utils/guc.h"

#define AT_POLICY_REASON_LEN	256

/* What the URL check learnt about a URL that is allowed. */
typedef struct AtUrlInfo
{
	bool		loopback_ok;	/* host is a loopback literal or "localhost" and
								 * allow_insecure_loopback is on: loopback
								 * addresses may be connected to */
	bool		plain_http;		/* scheme is http (with loopback_ok or
								 * plain_private) */
	bool		plain_private;	/* plain http allowed by
								 * agent_tasks.http_plain_allowed: every
								 * address connected to must be in its ranges */
} AtUrlInfo;

/*
 * NULL when the URL may be called, else the reason (written into buf).
 * Plain C: no palloc, no ereport; safe anywhere.
 */
extern const char *at_url_violation(const char *url, AtUrlInfo *info,
									char *buf, size_t buflen);

/*
 * Connect time: may this resolved address be connected to?  NULL when yes,
 * else the reason (written into buf).  Plain C, for libcurl callbacks.
 */
extern const char *at_address_violation(const struct sockaddr *addr, const AtUrlInfo *info,
										const char *host, char *buf, size_t buflen);

/* GUC hooks of agent_tasks.http_allowed_cidrs (defined in agent_tasks.c). */
extern bool at_allowed_cidrs_check(char **newval, void **extra, GucSource source);
extern void at_allowed_cidrs_assign(const char *newval, void *extra);

/* GUC hooks of agent_tasks.http_plain_allowed (defined in agent_tasks.c). */
extern bool at_plain_allowed_check(char **newval, void **extra, GucSource source);
extern void at_plain_allowed_assign(const char *newval, void *extra);

#endif							/* AGENT_TASKS_URL_POLICY_H */
