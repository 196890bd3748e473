/*-------------------------------------------------------------------------
 *
 * accounts.c
 *	  agent_tasks.current_account(): the account (tenant) of the session,
 *	  on the path of every call and of every row-level security check, so
 *	  in C and without catalog access.
 *
 *	  Where the account comes from (README, Security):
 *	  - a role bound to an account (agent_tasks.bind_account sets
 *	    agent_tasks.bound_account for the role in this database; PostgreSQL
 *	    applies it when the role logs in): that account, always.  A JWT
 *	    claim "account" or a setting agent_tasks.account naming another one
 *	    is refused with PT403 at use;
 *	  - otherwise the JWT claim "account" of request.jwt.claims (PostgREST,
 *	    API keys), else the setting agent_tasks.account, provided the
 *	    session may choose: agent_tasks.account_choice is on (the default;
 *	    the DBA turns it off per database and back on for trusted roles
 *	    with agent_tasks.allow_account_choice), or the session is a
 *	    superuser's.
 *
 *	  The claims are parsed once per distinct claims string (PostgREST sets
 *	  them once per request), not at every call.
 *
 *	  Also here: who acts (current_user_email(), current_actor(), which
 *	  every activity names), who calls (caller()) and from where
 *	  (request_origin()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "agent_tasks.h"

PG_FUNCTION_INFO_V1(at_current_account);
PG_FUNCTION_INFO_V1(at_current_user_email);
PG_FUNCTION_INFO_V1(at_current_actor);
PG_FUNCTION_INFO_V1(at_caller);
PG_FUNCTION_INFO_V1(at_caller_regprocedure);
PG_FUNCTION_INFO_V1(at_request_origin);

/*
 * The role an sql agent's function runs as while the executor calls it
 * (src/executor.c), else InvalidOid.
 */
Oid			at_executing_as = InvalidOid;

/*
 * The last claims string seen and what it names: the account, and the
 * person (claim "email", else "sub"); NULL where it names none.
 */
static char *claims_seen = NULL;
static char *claims_account = NULL;
static char *claims_person = NULL;

/* A non-empty string member of a JSON object, copied into TopMemoryContext. */
static char *
claim(Jsonb *claims, const char *key)
{
	JsonbValue *v;
	char	   *copy;

	if (!JB_ROOT_IS_OBJECT(claims))
		return NULL;
	v = getKeyJsonValueFromContainer(&claims->root, key, strlen(key), NULL);
	if (v == NULL || v->type != jbvString || v->val.string.len == 0)
		return NULL;
	copy = MemoryContextAlloc(TopMemoryContext, v->val.string.len + 1);
	memcpy(copy, v->val.string.val, v->val.string.len);
	copy[v->val.string.len] = '\0';
	return copy;
}

static void
parse_claims(const char *claims)
{
	Jsonb	   *jb;

	if (claims_seen != NULL && strcmp(claims_seen, claims) == 0)
		return;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	if (claims_seen != NULL)
		pfree(claims_seen);
	if (claims_account != NULL)
		pfree(claims_account);
	if (claims_person != NULL)
		pfree(claims_person);
	claims_account = claim(jb, "account");
	claims_person = claim(jb, "email");
	if (claims_person == NULL)
		claims_person = claim(jb, "sub");
	claims_seen = MemoryContextStrdup(TopMemoryContext, claims);
}

static const char *
account_of_claims(const char *claims)
{
	parse_claims(claims);
	return claims_account;
}

static inline bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/*
 * The session's account as current_account() gives it, or NULL where that
 * raises "no account is set"; the other refusals (PT403) are raised.
 */
const char *
at_session_account(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	const char *from_claims = nonempty(claims) ? account_of_claims(claims) : NULL;

	if (!nonempty(agent_tasks_bound_account) && !nonempty(from_claims) && !nonempty(agent_tasks_account))
		return NULL;
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(at_current_account, (Datum) 0)));
}

Datum
at_current_account(PG_FUNCTION_ARGS)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	const char *from_claims = nonempty(claims) ? account_of_claims(claims) : NULL;
	const char *bound = agent_tasks_bound_account;
	const char *chosen;

	if (nonempty(bound))
	{
		const char *other = NULL;
		const char *source = NULL;

		if (nonempty(from_claims) && strcmp(from_claims, bound) != 0)
			other = from_claims, source = "the JWT claim \"account\"";
		else if (nonempty(agent_tasks_account) && strcmp(agent_tasks_account, bound) != 0)
			other = agent_tasks_account, source = "agent_tasks.account";
		if (other != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_AT_FORBIDDEN),
					 errmsg("role \"%s\" is bound to account \"%s\" and cannot act for another",
							GetUserNameFromId(GetSessionUserId(), false), bound),
					 errdetail("%s names account \"%s\".", source, other),
					 errhint("Leave agent_tasks.account unset (or set it to \"%s\"); the DBA binds roles "
							 "with agent_tasks.bind_account().", bound)));
		PG_RETURN_TEXT_P(cstring_to_text(bound));
	}

	chosen = nonempty(from_claims) ? from_claims :
		nonempty(agent_tasks_account) ? agent_tasks_account : NULL;
	if (chosen == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AT_FORBIDDEN),
				 errmsg("no account is set for this session"),
				 errdetail("Neither the JWT claim \"account\" nor the setting agent_tasks.account names an account."),
				 errhint("SQL callers: SET agent_tasks.account = 'my-account'. PostgREST callers: use a key or JWT that carries an account.")));
	if (!agent_tasks_account_choice && !superuser_arg(GetSessionUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_AT_FORBIDDEN),
				 errmsg("role \"%s\" may not choose its account",
						GetUserNameFromId(GetSessionUserId(), false)),
				 errdetail("agent_tasks.account_choice is off in this database and the role is bound to no account."),
				 errhint("The DBA binds the role to its account with agent_tasks.bind_account(), or lets it "
						 "choose with agent_tasks.allow_account_choice().")));
	PG_RETURN_TEXT_P(cstring_to_text(chosen));
}

/* A setting's value, NULL when it is unset or empty (for C callers too). */
const char *
at_nonempty_setting(const char *name)
{
	const char *value = GetConfigOption(name, true, false);

	return nonempty(value) ? value : NULL;
}

/*
 * The person acting in this session, lower-cased: the JWT claim "email"
 * (else "sub"), else the setting agent_tasks.email (else agent_tasks.user,
 * its name in 0.1.0); NULL when unknown.
 */
char *
at_session_email(void)
{
	const char *claims = at_nonempty_setting("request.jwt.claims");
	const char *person = NULL;

	if (claims != NULL)
	{
		parse_claims(claims);
		person = claims_person;
	}
	if (person == NULL)
		person = at_nonempty_setting("agent_tasks.email");
	if (person == NULL)
		person = at_nonempty_setting("agent_tasks.user");
	if (person == NULL)
		return NULL;
	return str_tolower(person, strlen(person), DEFAULT_COLLATION_OID);
}

/*
 * Who an activity names as its actor: a worker, else the person, else the
 * session's role.
 */
char *
at_session_actor(void)
{
	const char *worker = at_nonempty_setting("agent_tasks.worker");
	char	   *email;

	if (worker != NULL)
		return psprintf("worker:%s", worker);
	if ((email = at_session_email()) != NULL)
		return email;
	return psprintf("role:%s", GetUserNameFromId(GetSessionUserId(), false));
}

Datum
at_current_user_email(PG_FUNCTION_ARGS)
{
	char	   *email = at_session_email();

	if (email == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(email));
}

Datum
at_current_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(at_session_actor()));
}

/*
 * The role on whose behalf the API is called.  The API's functions are
 * SECURITY DEFINER (their owner, agent_tasks_engine, holds the privileges
 * on the private tables), so current_user inside them is that owner: the
 * caller is the role of SET ROLE (which is how PostgREST and authenticate()
 * switch to a request's role), else the session's user; while the executor
 * runs an sql agent's function, the agent's role.
 */
Oid
at_caller_role(void)
{
	Oid			role;

	if (OidIsValid(at_executing_as))
		return at_executing_as;
	role = GetCurrentRoleId();
	return OidIsValid(role) ? role : GetSessionUserId();
}

Datum
at_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(at_caller_role(), false))));
}

/*
 * request_origin(): 'rest' for a call made through PostgREST (it sets
 * request.method for the request), else 'sql'.  Asked at every task
 * creation, hence in C.
 */
Datum
at_request_origin(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(at_nonempty_setting("request.method") != NULL ? "rest" : "sql"));
}

/*
 * The function a signature names, as to_regprocedure() finds it with the
 * current user's rights; InvalidOid when there is none (or the name does
 * not parse).
 */
Oid
at_lookup_function(const char *signature)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(signature);
	fcinfo->args[0].isnull = false;
	result = to_regprocedure(fcinfo);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
}

/*
 * caller_regprocedure(signature): the function as the caller sees it, so
 * that an application names its own functions without granting the
 * engine anything on its schemas.
 */
Datum
at_caller_regprocedure(PG_FUNCTION_ARGS)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			fn;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(at_caller_role(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	fn = at_lookup_function(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (!OidIsValid(fn))
		PG_RETURN_NULL();
	PG_RETURN_OID(fn);
}
