/*-------------------------------------------------------------------------
 *
 * webhook_signing.c
 *	  Standard Webhooks 1.0 signatures and secrets, with PostgreSQL's own
 *	  HMAC-SHA256 (common/hmac.h) and base64 (common/base64.h).
 *
 *	  sign_webhook(secret, msg_id, ts, body) returns "v1,<base64>" where the
 *	  MAC is HMAC-SHA256(key, msg_id || '.' || ts || '.' || body) and key is
 *	  the base64-decoded part of the secret after "whsec_".
 *	  new_webhook_secret() returns "whsec_" + base64 of 24 random bytes.
 *	  hmac_sha256(key, data) is the bare MAC, for the API keys that are
 *	  JWTs signed with PostgREST's secret (82_api_keys.sql), so that neither
 *	  needs pgcrypto.
 *
 *	  The outbox, schedule and delivery policy live in
 *	  src/sql/install/85_webhooks.sql; the HTTP side in the dispatcher.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "agent_tasks.h"

#define WHSEC_PREFIX		"whsec_"
#define WHSEC_PREFIX_LEN	6
#define WHSEC_MIN_KEY		16
#define WHSEC_MAX_KEY		64
#define WHSEC_NEW_KEY		24

PG_FUNCTION_INFO_V1(at_sign_webhook);
PG_FUNCTION_INFO_V1(at_new_webhook_secret);
PG_FUNCTION_INFO_V1(at_hmac_sha256);

/*
 * Decode the key of a "whsec_..." secret into key (WHSEC_MAX_KEY bytes);
 * returns its length.  Anything else is PT400: the secret is never echoed.
 */
static int
decode_secret(text *secret, uint8 *key)
{
	const char *s = VARDATA_ANY(secret);
	int			len = VARSIZE_ANY_EXHDR(secret);
	int			keylen;
	char		buf[WHSEC_MAX_KEY * 2];

	if (len <= WHSEC_PREFIX_LEN || strncmp(s, WHSEC_PREFIX, WHSEC_PREFIX_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("invalid webhook secret"),
				 errdetail("A webhook secret starts with \"whsec_\" followed by base64 (%d characters given).", len),
				 errhint("Omit the secret to have one generated, or pass \"whsec_\" + base64 of %d to %d random bytes.",
						 WHSEC_MIN_KEY, WHSEC_MAX_KEY)));
	s += WHSEC_PREFIX_LEN;
	len -= WHSEC_PREFIX_LEN;
	if (pg_b64_dec_len(len) > (int) sizeof(buf))
		keylen = -1;
	else
		keylen = pg_b64_decode(s, len, buf, sizeof(buf));
	if (keylen < WHSEC_MIN_KEY || keylen > WHSEC_MAX_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("invalid webhook secret"),
				 errdetail(keylen < 0 ? "The part after \"whsec_\" is not valid base64 of at most %d bytes."
						   : "The key after \"whsec_\" must decode to %d to %d bytes.",
						   keylen < 0 ? WHSEC_MAX_KEY : WHSEC_MIN_KEY, WHSEC_MAX_KEY),
				 errhint("Omit the secret to have one generated, or pass \"whsec_\" + base64 of %d to %d random bytes.",
						 WHSEC_MIN_KEY, WHSEC_MAX_KEY)));
	memcpy(key, buf, keylen);
	explicit_bzero(buf, sizeof(buf));
	return keylen;
}

static void
hmac_fail(pg_hmac_ctx *ctx)
{
	const char *why = pg_hmac_error(ctx);

	pg_hmac_free(ctx);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute an HMAC-SHA256: %s", why)));
}

/* sign_webhook(secret text, msg_id text, ts bigint, body text) RETURNS text */
Datum
at_sign_webhook(PG_FUNCTION_ARGS)
{
	text	   *secret = PG_GETARG_TEXT_PP(0);
	text	   *msg_id = PG_GETARG_TEXT_PP(1);
	int64		ts = PG_GETARG_INT64(2);
	text	   *body = PG_GETARG_TEXT_PP(3);
	uint8		key[WHSEC_MAX_KEY];
	int			keylen = decode_secret(secret, key);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		tsbuf[32];
	pg_hmac_ctx *ctx;
	int			enclen;
	char	   *result;

	snprintf(tsbuf, sizeof(tsbuf), INT64_FORMAT, ts);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) VARDATA_ANY(msg_id), VARSIZE_ANY_EXHDR(msg_id)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) tsbuf, strlen(tsbuf)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body)) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		explicit_bzero(key, sizeof(key));
		hmac_fail(ctx);
	}
	pg_hmac_free(ctx);
	explicit_bzero(key, sizeof(key));

	/* "v1," + base64 + NUL */
	enclen = pg_b64_enc_len(sizeof(mac));
	result = palloc(3 + enclen + 1);
	memcpy(result, "v1,", 3);
	enclen = pg_b64_encode((const char *) mac, sizeof(mac), result + 3, enclen);
	if (enclen < 0)
		elog(ERROR, "could not base64-encode the webhook signature");
	result[3 + enclen] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* new_webhook_secret() RETURNS text: "whsec_" + base64 of 24 random bytes */
Datum
at_new_webhook_secret(PG_FUNCTION_ARGS)
{
	uint8		key[WHSEC_NEW_KEY];
	int			enclen = pg_b64_enc_len(sizeof(key));
	char	   *result = palloc(WHSEC_PREFIX_LEN + enclen + 1);

	if (!pg_strong_random(key, sizeof(key)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random webhook secret")));
	memcpy(result, WHSEC_PREFIX, WHSEC_PREFIX_LEN);
	enclen = pg_b64_encode((const char *) key, sizeof(key), result + WHSEC_PREFIX_LEN, enclen);
	explicit_bzero(key, sizeof(key));
	if (enclen < 0)
		elog(ERROR, "could not base64-encode the webhook secret");
	result[WHSEC_PREFIX_LEN + enclen] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* hmac_sha256(key bytea, data bytea) RETURNS bytea */
Datum
at_hmac_sha256(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	bytea	   *result = (bytea *) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pg_hmac_ctx *ctx;

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)) < 0 ||
		pg_hmac_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
		hmac_fail(ctx);
	pg_hmac_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	PG_RETURN_BYTEA_P(result);
}
