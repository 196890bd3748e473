/*-------------------------------------------------------------------------
 *
 * api_keys.c
 *	  Randomness for API key tokens (src/sql/install/82_api_keys.sql).
 *
 *	  An opaque token (keys made while the extension has no JWT secret) is
 *	  "at_" followed by 32 bytes from the operating system's
 *	  cryptographically strong generator (pg_strong_random), base64url
 *	  encoded in SQL; keys that are JWTs are signed with hmac_sha256()
 *	  (webhook_signing.c).  Only its SHA-256 is stored.  PostgreSQL 15 has
 *	  sha256() but, without pgcrypto, no SQL function returning strong
 *	  random bytes, hence this one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "port.h"
#include "utils/builtins.h"

#include "agent_tasks.h"

PG_FUNCTION_INFO_V1(at_random_bytes);

/*
 * agent_tasks_internal.random_bytes(n integer) RETURNS bytea
 */
Datum
at_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("number of random bytes is out of range"),
				 errdetail("n = %d", n),
				 errhint("Ask for 1 to 1024 bytes.")));

	result = (bytea *) palloc(VARHDRSZ + n);
	SET_VARSIZE(result, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(result), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));

	PG_RETURN_BYTEA_P(result);
}
