# agent_tasks — PGXS build.
#
#   make && make install      build and install into the PostgreSQL of PG_CONFIG
#                             (default: the first pg_config on PATH)
#   make installcheck         regression, isolation and TAP suites on temporary
#                             instances (as an unprivileged user, after make install)
#   make demo                 the README's demo (installs what is missing)
#   make test                 every suite on a throwaway cluster (the README's test command)

PG_CONFIG ?= pg_config

EXTENSION = agent_tasks
MODULE_big = agent_tasks
EXTVERSION = 0.2.0

OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
# PGXS tracks no header dependencies here (Debian's server is built without
# --enable-depend): every object is rebuilt when a header changes, so that
# no two files disagree on a shared-memory layout.
$(OBJS): $(wildcard src/*.h)

# The install script is assembled from the pieces under src/sql/install, in
# file-name order, so that each concern keeps its own SQL file.
INSTALL_PARTS = $(sort $(wildcard src/sql/install/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# Released versions' install scripts stay as they shipped (CREATE EXTENSION
# ... VERSION '0.1.0' and the upgrade test need them); upgrades go from each.
DATA = $(wildcard src/sql/released/$(EXTENSION)--*.sql) \
	$(wildcard src/sql/upgrades/$(EXTENSION)--*--*.sql)

# make installcheck needs no running server: pg_regress and
# pg_isolation_regress each start a temporary instance with the settings of
# test/installcheck.conf (agent_tasks and pg_cron preloaded), as pg_cron's own
# tests do; the TAP tests make their own nodes.
INSTALLCHECK_OPTS = --load-extension=$(EXTENSION) --temp-config=$(srcdir)/test/installcheck.conf
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = $(INSTALLCHECK_OPTS) --temp-instance=./tmp_check
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = $(INSTALLCHECK_OPTS) --temp-instance=test/isolation/tmp_check \
	--inputdir=$(srcdir)/test/isolation --outputdir=test/isolation/output_iso
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/tap/t/*.pl))
REGRESS_PREP = installcheck-unprivileged

# The console's files are compiled into the library (src/console.c).
CONSOLE_FILES = $(sort $(wildcard src/console/*.html src/console/*.js src/console/*.css src/console/*.svg))
src/console.o: src/console_files.inc
src/console_files.inc: src/console/embed.pl $(CONSOLE_FILES)
	perl src/console/embed.pl $(CONSOLE_FILES) > $@.tmp && mv $@.tmp $@

SHLIB_LINK = -lcurl
PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = results regression.diffs regression.out test/isolation/results test/isolation/output_iso \
	test/isolation/tmp_check src/console_files.inc

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The dependency rules above come before PGXS's "all" and would otherwise
# make the first object file the default goal of a plain "make".
.DEFAULT_GOAL := all

# After the include, which sets the PGXS default: AgentTasksTest.pm is there.
PG_PROVE_FLAGS += -I $(srcdir)/test/tap

# The temporary instances and TAP nodes run as the caller, and PostgreSQL
# refuses to run as root.
.PHONY: installcheck-unprivileged
installcheck-unprivileged:
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make installcheck: PostgreSQL refuses to run as root; run it as an unprivileged user that can write this tree, e.g. runuser -u postgres -- make installcheck" >&2; \
		exit 1; \
	fi

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

.PHONY: demo test
demo:
	./test/demo.sh

test:
	./test/check.sh
