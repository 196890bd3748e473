# agent_tasks — PGXS build.
#
#   make && make install      build and install into PostgreSQL 15
#   make installcheck         pg_regress suite against a running server
#   make demo                 the README's demo (installs what is missing)
#   make test                 every suite on a throwaway cluster (the README's test command)

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

EXTENSION = agent_tasks
MODULE_big = agent_tasks
EXTVERSION = 0.2.0

OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from the pieces under src/sql/install, in
# file-name order, so that each concern keeps its own SQL file.
INSTALL_PARTS = $(sort $(wildcard src/sql/install/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# Released versions' install scripts stay as they shipped (CREATE EXTENSION
# ... VERSION '0.1.0' and the upgrade test need them); upgrades go from each.
DATA = $(wildcard src/sql/released/$(EXTENSION)--*.sql) \
	$(wildcard src/sql/upgrades/$(EXTENSION)--*--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=$(EXTENSION)

SHLIB_LINK = -lcurl
PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = results regression.diffs regression.out test/isolation/results test/isolation/output_iso

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

.PHONY: demo test
demo:
	./test/demo.sh

test:
	./test/check.sh
