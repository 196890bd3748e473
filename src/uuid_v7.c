/*-------------------------------------------------------------------------
 *
 * uuid_v7.c
 *	  Time-ordered identifiers (RFC 9562 UUID version 7) for every primary
 *	  key, so that inserts stay at the right edge of B-trees and id order is
 *	  creation order.
 *
 * The 12 "rand_a" bits after the millisecond timestamp hold a counter
 * (RFC 9562, section 6.2, method 1), which makes ids strictly increasing
 * within a backend even when many are made in one millisecond or the clock
 * steps back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "agent_tasks.h"

#define UUIDV7_COUNTER_MAX	0x0FFF

static int64 last_unix_ms = 0;
static uint16 last_counter = 0;

PG_FUNCTION_INFO_V1(at_uuid_v7);
PG_FUNCTION_INFO_V1(at_uuid_v7_time);

static int64
unix_epoch_ms(TimestampTz ts)
{
	return ts / 1000 +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/* Fill uuid with a new version 7 UUID. */
static void
uuid_v7_generate(pg_uuid_t *uuid)
{
	uint8		rnd[10];
	int64		now_ms = unix_epoch_ms(GetCurrentTimestamp());
	int			i;

	if (!pg_strong_random(rnd, sizeof(rnd)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bits for a UUID")));

	if (now_ms > last_unix_ms)
	{
		last_unix_ms = now_ms;
		/* start low in the counter space so that bursts rarely overflow it */
		last_counter = ((rnd[8] << 8) | rnd[9]) & 0x01FF;
	}
	else if (last_counter < UUIDV7_COUNTER_MAX)
		last_counter++;
	else
	{
		/* counter exhausted: borrow the next millisecond */
		last_unix_ms++;
		last_counter = 0;
	}

	for (i = 0; i < 6; i++)
		uuid->data[i] = (uint8) (last_unix_ms >> (8 * (5 - i)));
	uuid->data[6] = 0x70 | (uint8) (last_counter >> 8);
	uuid->data[7] = (uint8) last_counter;
	uuid->data[8] = 0x80 | (rnd[0] & 0x3F);
	memcpy(&uuid->data[9], &rnd[1], 7);
}

/* A new version 7 UUID, palloc'd (for C callers and uuid_v7()). */
Datum
at_new_uuid_v7(void)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	uuid_v7_generate(uuid);
	return UUIDPGetDatum(uuid);
}

Datum
at_uuid_v7(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(at_new_uuid_v7());
}

/* The creation time embedded in a version 7 UUID, or NULL for other versions. */
Datum
at_uuid_v7_time(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(0);
	int64		unix_ms = 0;
	int			i;

	if ((uuid->data[6] >> 4) != 7)
		PG_RETURN_NULL();

	for (i = 0; i < 6; i++)
		unix_ms = (unix_ms << 8) | uuid->data[i];

	PG_RETURN_TIMESTAMPTZ((unix_ms -
						   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000) * 1000);
}
