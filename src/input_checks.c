/*-------------------------------------------------------------------------
 *
 * input_checks.c
 *	  The input checks shared by the API functions: check_text, check_json,
 *	  check_tags and check_url (agent_tasks_internal).  Each returns its
 *	  value (normalized where said) or refuses it with PT400, naming the
 *	  argument and showing the offending value.
 *
 *	  They are in C because create_task() (tasks.c) makes a dozen checks per
 *	  task, calling the C entry points below directly; the SQL functions
 *	  serve the API functions written in PL/pgSQL.  They read no table and
 *	  touch nothing but their arguments.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"

#include "agent_tasks.h"
#include "input_checks.h"
#include "url_policy.h"

PG_FUNCTION_INFO_V1(at_check_text);
PG_FUNCTION_INFO_V1(at_check_json);
PG_FUNCTION_INFO_V1(at_check_tags);
PG_FUNCTION_INFO_V1(at_check_url);

/* Values shown in an error's detail are cut to this many characters. */
#define SHOWN_CHARS		200

/* Does the text match the regular expression, as the operator ~ does? */
bool
at_text_matches(text *value, const char *pattern)
{
	return DatumGetBool(DirectFunctionCall2Coll(textregexeq, DEFAULT_COLLATION_OID,
												PointerGetDatum(value),
												CStringGetTextDatum(pattern)));
}

/* The first SHOWN_CHARS characters of a C string. */
static char *
shown(const char *s)
{
	int			len = strlen(s);

	return pnstrdup(s, pg_mbcharcliplen(s, len, SHOWN_CHARS));
}

/*
 * check_text(field text, value text, max_length integer,
 *			  required boolean DEFAULT false) RETURNS text
 *
 * Required text must not be blank (only white space); no text may pass
 * max_length characters (a negative max_length: no limit).
 */
text *
at_checked_text(const char *field, text *value, int max_length, bool required)
{
	int			length;

	if (required && (value == NULL || !at_text_matches(value, "\\S")))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s must not be empty", field),
				 errdetail("%s is %s.", field,
						   value ? quote_literal_cstr(text_to_cstring(value)) : "null"),
				 errhint("Pass a non-empty %s.", field)));
	if (value == NULL)
		return NULL;

	length = pg_mbstrlen_with_len(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	if (max_length >= 0 && length > max_length)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s is too long", field),
				 errdetail("%s has %d characters; the limit is %d.", field, length, max_length),
				 errhint("Shorten %s.", field)));
	return value;
}

Datum
at_check_text(PG_FUNCTION_ARGS)
{
	text	   *value;

	value = at_checked_text(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
							PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2),
							!PG_ARGISNULL(3) && PG_GETARG_BOOL(3));
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(value);
}

/*
 * check_json(field text, value jsonb, expected text,
 *			  max_bytes integer DEFAULT 65536) RETURNS jsonb
 *
 * A JSON value of the expected type (object, array, ...) of at most
 * max_bytes as stored (a negative max_bytes: no limit).  A JSON null is an
 * absent value (NULL: at_json_present() says false), except where the
 * argument is the whole point of the call: a patch, the items of a
 * command, a template.
 */
bool
at_json_present(const char *field, Datum value, const char *expected, int max_bytes)
{
	char	   *type = TextDatumGetCString(DirectFunctionCall1(jsonb_typeof, value));
	Size		size;

	if (strcmp(type, "null") == 0 && strcmp(field, "patch") != 0 &&
		strcmp(field, "items") != 0 && strcmp(field, "template") != 0)
		return false;
	if (strcmp(type, expected) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s must be a JSON %s", field, expected),
				 errdetail("%s is a JSON %s: %s", field, type,
						   shown(DatumGetCString(DirectFunctionCall1(jsonb_out, value)))),
				 errhint("Pass a JSON %s as %s.", expected, field)));

	size = toast_datum_size(value);
	if (max_bytes >= 0 && (int64) size > max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s is too large", field),
				 errdetail("%s takes %zu bytes; the limit is %d.", field, size, max_bytes),
				 errhint("Make %s smaller.", field)));
	return true;
}

Datum
at_check_json(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1) ||
		!at_json_present(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_DATUM(1),
						 text_to_cstring(PG_GETARG_TEXT_PP(2)),
						 PG_ARGISNULL(3) ? -1 : PG_GETARG_INT32(3)))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(1));
}

/*
 * check_tags(field text, value text[]) RETURNS text[]
 *
 * At most 100 entries, each a non-empty string of at most 200 characters;
 * NULL is the empty array.
 */
ArrayType *
at_checked_tags(const char *field, ArrayType *value)
{
	Datum	   *entries;
	bool	   *nulls;
	int			n;

	if (value == NULL)
		return construct_empty_array(TEXTOID);
	n = ArrayGetNItems(ARR_NDIM(value), ARR_DIMS(value));
	if (n > 100)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("too many %s", field),
				 errdetail("%s has %d entries; the limit is 100.", field, n),
				 errhint("Pass at most 100 %s.", field)));

	deconstruct_array(value, TEXTOID, -1, false, TYPALIGN_INT, &entries, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *entry = nulls[i] ? NULL : DatumGetTextPP(entries[i]);

		if (entry == NULL || VARSIZE_ANY_EXHDR(entry) == 0 ||
			pg_mbstrlen_with_len(VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry)) > 200)
			ereport(ERROR,
					(errcode(ERRCODE_AT_BAD_INPUT),
					 errmsg("invalid entry in %s", field),
					 errdetail("%s = %s", field,
							   OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(value))),
					 errhint("Entries must be non-empty strings of at most 200 characters.")));
	}
	return value;
}

Datum
at_check_tags(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(at_checked_tags(text_to_cstring(PG_GETARG_TEXT_PP(0)),
										  PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1)));
}

/*
 * check_url(field text, url text) RETURNS text
 *
 * An absolute http(s) URL of at most 2000 characters that the outbound URL
 * policy (src/url_policy.c) allows.
 */
text *
at_checked_url(const char *field, text *url)
{
	char	   *url_string;
	char		buf[AT_POLICY_REASON_LEN];
	AtUrlInfo	info;
	const char *reason;

	if (url == NULL)
		return NULL;
	url_string = text_to_cstring(url);
	if (!at_text_matches(url, "^https?://[^\\s/]+") ||
		pg_mbstrlen_with_len(VARDATA_ANY(url), VARSIZE_ANY_EXHDR(url)) > 2000)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s is not a valid URL", field),
				 errdetail("%s = %s", field, quote_literal_cstr(shown(url_string))),
				 errhint("Use an absolute https:// URL of at most 2000 characters.")));

	reason = at_url_violation(url_string, &info, buf, sizeof(buf));
	if (reason != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("%s is not allowed: %s", field, reason),
				 errdetail("%s = %s", field, quote_literal_cstr(shown(url_string))),
				 errhint("Use a public https:// URL without user information. A superuser can allow private ranges "
						 "(agent_tasks.http_allowed_cidrs), plain http to private ranges and host names "
						 "(agent_tasks.http_plain_allowed) and, for local development, loopback (agent_tasks.allow_insecure_loopback).")));
	return url;
}

Datum
at_check_url(PG_FUNCTION_ARGS)
{
	text	   *url = at_checked_url(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									 PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));

	if (url == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(url);
}
