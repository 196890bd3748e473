/*-------------------------------------------------------------------------
 *
 * input_checks.h
 *	  The input checks of input_checks.c, for C callers: each returns its
 *	  value or refuses it with PT400 (ereport), naming the argument.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_INPUT_CHECKS_H
#define AGENT_TASKS_INPUT_CHECKS_H

#include "postgres.h"

#include "utils/array.h"

extern bool at_text_matches(text *value, const char *pattern);
extern text *at_checked_text(const char *field, text *value, int max_length, bool required);
extern bool at_json_present(const char *field, Datum value, const char *expected, int max_bytes);
extern ArrayType *at_checked_tags(const char *field, ArrayType *value);
extern text *at_checked_url(const char *field, text *url);

#endif							/* AGENT_TASKS_INPUT_CHECKS_H */
