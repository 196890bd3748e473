/*-------------------------------------------------------------------------
 *
 * console.c
 *	  The web console's files (src/console/), compiled into the library so
 *	  that PostgREST serves them from the extension itself
 *	  (agent_tasks.console(), src/sql/install/87_console.sql).  Keeping them
 *	  here rather than in SQL string literals means the install script and
 *	  the upgrade script define the same small functions, and the console
 *	  always matches the library it came with.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "console_files.inc"

PG_FUNCTION_INFO_V1(at_console_file);

/* The bytes of the named file, or NULL when the console has no such file. */
Datum
at_console_file(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	for (int i = 0; i < lengthof(console_files); i++)
	{
		if (strcmp(console_files[i].name, name) == 0)
		{
			bytea	   *result = palloc(VARHDRSZ + console_files[i].length);

			SET_VARSIZE(result, VARHDRSZ + console_files[i].length);
			memcpy(VARDATA(result), console_files[i].data, console_files[i].length);
			PG_RETURN_BYTEA_P(result);
		}
	}
	PG_RETURN_NULL();
}
