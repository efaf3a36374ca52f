# enoshim — top-level Makefile
#
#   make            install missing packages, fetch lwIP, build everything
#   make demo       the main job: build, then run scripts/demo
#   make test       unit tests, fuzz smoke, integration tests (root)
#   make SAN=1 ...  the same with ASan+UBSan, into build/san/
#   make bench      scripts/bench (performance comparison, see README)
#
#   make install    PREFIX (/usr/local) and DESTDIR honoured; make uninstall
#
# Outputs: build/tund, build/libenoshim.so, build/enorun, build/tests/...

CC        ?= gcc
V         ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif
SAN       ?= 0
ifeq ($(SAN),1)
BUILD     ?= build/san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1
else
BUILD     ?= build
SANFLAGS  :=
OPT       := -O2
endif

LWIP      := third_party/lwip
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter
CPPFLAGS  := -D_GNU_SOURCE -Iinclude -Icommon -Istack
CFLAGS    := -std=c11 $(OPT) -g -pthread -fPIC $(WARN) $(SANFLAGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP
LDFLAGS   := -pthread $(SANFLAGS) -Wl,-z,relro,-z,now
CRYPTO_LIBS := -lsodium -lcrypto

LWIP_CPPFLAGS := -Istack/lwip -I$(LWIP)/src/include
# lwIP's own sources build with warnings on, as errors too; the few idioms of
# 2.1.3 that gcc 12 flags are switched off by name, for lwIP only.
LWIP_CFLAGS := -std=gnu11 $(OPT) -g -fPIC -Wall -Wextra -Werror -Wno-unused-parameter \
               -Wno-address -Wno-type-limits -Wno-unused-variable $(SANFLAGS) -MMD -MP

LWIP_SRCS := $(addprefix $(LWIP)/src/core/, init.c def.c inet_chksum.c ip.c mem.c memp.c \
               netif.c pbuf.c stats.c sys.c tcp.c tcp_in.c tcp_out.c timeouts.c) \
             $(addprefix $(LWIP)/src/core/ipv4/, icmp.c ip4.c ip4_addr.c ip4_frag.c) \
             $(addprefix $(LWIP)/src/core/ipv6/, icmp6.c inet6.c ip6.c ip6_addr.c ip6_frag.c nd6.c)
OBJ       := $(BUILD)/obj
LWIP_OBJS := $(patsubst $(LWIP)/src/%.c,$(OBJ)/lwip/%.o,$(LWIP_SRCS))

COMMON_SRCS := $(wildcard common/*.c)
STACK_SRCS  := $(filter-out stack/lwip_glue.c,$(wildcard stack/*.c))
GLUE_SRCS   := $(wildcard stack/lwip_glue.c)
TUND_SRCS   := $(filter-out tund/nathelper.c,$(wildcard tund/*.c))
SHIM_SRCS   := $(wildcard shim/*.c)

COMMON_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(COMMON_SRCS))
STACK_OBJS  := $(patsubst %.c,$(OBJ)/%.o,$(STACK_SRCS))
GLUE_OBJS   := $(patsubst %.c,$(OBJ)/%.o,$(GLUE_SRCS))
TUND_OBJS   := $(patsubst %.c,$(OBJ)/%.o,$(TUND_SRCS))
# The shim is built without the sanitizers' interceptors fighting ours: it is
# compiled with SANFLAGS only when SAN=1 and loaded after libasan.
SHIM_OBJS   := $(patsubst %.c,$(OBJ)/shim-pic/%.o,$(SHIM_SRCS) $(COMMON_SRCS))

UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
PROG_SRCS   := $(wildcard tests/progs/*.c)
PROG_BINS   := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(PROG_SRCS))
EX_SRCS     := $(wildcard examples/*.c)
EX_BINS     := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EX_SRCS))

# ---- installation layout (make install PREFIX=... DESTDIR=...) ----------------
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
SBINDIR      ?= $(PREFIX)/sbin
LIBDIR       ?= $(PREFIX)/lib
PKGLIBDIR    ?= $(LIBDIR)/enoshim
LIBEXECDIR   ?= $(PREFIX)/libexec/enoshim
INCLUDEDIR   ?= $(PREFIX)/include
DATADIR      ?= $(PREFIX)/share
MANDIR       ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(DATADIR)/pkgconfig
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(PREFIX)/lib/systemd/system
# the one version string (include/enoshim/version.h), and the date of its last change
VERSION      := $(shell sed -n 's/^\#define ENOSHIM_VERSION *"\(.*\)".*/\1/p' include/enoshim/version.h)
VERSION_DATE := $(shell git log -1 --format=%cs -- include/enoshim/version.h 2>/dev/null | grep . || date +%Y-%m-%d)
GEN          := $(BUILD)/gen
MAN_PAGES    := $(patsubst docs/man/%.in,$(GEN)/man/%,$(wildcard docs/man/*.in))
GEN_FILES    := $(MAN_PAGES) $(GEN)/tcpinc.pc $(GEN)/tund.service $(GEN)/enodump

.PHONY: all setup deps demo test unit integ fuzz-smoke bench clean distclean san-test install uninstall
all: setup $(BUILD)/tund $(BUILD)/tund-nat $(BUILD)/libenoshim.so $(BUILD)/enorun $(BUILD)/enoctl \
     $(UNIT_BINS) $(PROG_BINS) $(EX_BINS) $(BUILD)/bench/enobench $(GEN_FILES)

# scripts/setup is idempotent and fast once done; it installs packages and
# fetches lwIP's source the first time.
setup: $(LWIP)/.enoshim-fetched

# scripts/setup runs on every make (it is quick when there is nothing to do)
# and rewrites this stamp only when it extracted lwIP afresh (a patch added,
# changed or removed): every lwIP object depends on the stamp, so exactly then
# all of lwIP is rebuilt (make compares the stamp's time after the recipe).
# With make -j the objects could otherwise be compiled from the old source
# while setup replaced it, and never again.
$(LWIP)/.enoshim-fetched: FORCE
	@scripts/setup

.PHONY: FORCE
FORCE:

$(LWIP_SRCS): $(LWIP)/.enoshim-fetched ;

$(OBJ)/lwip/%.o: $(LWIP)/src/%.c $(LWIP)/.enoshim-fetched stack/lwip/lwipopts.h stack/lwip/enoshim_lwip_hooks.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(LWIP_CPPFLAGS) $(LWIP_CFLAGS) -c $< -o $@

$(OBJ)/liblwip.a: $(LWIP_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(OBJ)/stack/lwip_glue.o: stack/lwip_glue.c | $(LWIP)/src/core/tcp_in.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(LWIP_CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OBJ)/tund/%.o: tund/%.c | $(LWIP)/src/core/tcp_in.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(LWIP_CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OBJ)/libstack.a: $(STACK_OBJS) $(COMMON_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/tund: $(TUND_OBJS) $(GLUE_OBJS) $(OBJ)/libstack.a $(OBJ)/liblwip.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CRYPTO_LIBS) -lcap

# the privileged helper: its own small executable (tund/nat.h)
$(BUILD)/tund-nat: $(OBJ)/tund/nathelper.o $(OBJ)/tund/natproto.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcap -lnftables -lnetfilter_conntrack -lmnl

$(BUILD)/enoctl: $(BUILD)/tund
	ln -sf tund $@

$(OBJ)/shim-pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -U_FORTIFY_SOURCE -fvisibility=hidden -DENOSHIM_SHIM -c $< -o $@

$(BUILD)/libenoshim.so: $(SHIM_OBJS) shim/exports.map
	@echo "  LD      $@"
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,--version-script=shim/exports.map -o $@.tmp $(SHIM_OBJS) -ldl
	$(Q)scripts/check-exports $@.tmp $(SHIM_SRCS) && mv $@.tmp $@

# enorun (enorun/): the paths of the installed layout are built in (a
# fallback after its own directory's neighbours); the header is rewritten
# only when they change, so a `make install PREFIX=...` rebuilds enorun.
$(GEN)/enoshim-paths.h: FORCE
	@mkdir -p $(dir $@)
	@printf '/* generated by make: the installation layout */\n#define ENOSHIM_PKGLIBDIR "%s"\n#define ENOSHIM_SBINDIR "%s"\n' \
	  '$(PKGLIBDIR)' '$(SBINDIR)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(OBJ)/enorun/enorun.o: enorun/enorun.c $(GEN)/enoshim-paths.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) -I$(GEN) $(CFLAGS) -c $< -o $@

$(BUILD)/enorun: $(OBJ)/enorun/enorun.o $(OBJ)/enorun/elfcheck.o $(OBJ)/common/prefix.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# ---- files made for installation: man pages, pkg-config, systemd unit -------
SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@DATE@|$(VERSION_DATE)|g' \
            -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
            -e 's|@PKGLIBDIR@|$(PKGLIBDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
            -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

$(GEN)/man/%: docs/man/%.in $(GEN)/enoshim-paths.h include/enoshim/version.h
	@mkdir -p $(dir $@)
	$(Q)$(SUBST) $< >$@

$(GEN)/tcpinc.pc: dist/tcpinc.pc.in $(GEN)/enoshim-paths.h include/enoshim/version.h
	@mkdir -p $(dir $@)
	$(Q)$(SUBST) $< >$@

$(GEN)/tund.service: dist/tund.service.in $(GEN)/enoshim-paths.h
	@mkdir -p $(dir $@)
	$(Q)$(SUBST) $< >$@

# enodump with the version written in (from the source tree it reads version.h)
$(GEN)/enodump: scripts/enodump include/enoshim/version.h
	@mkdir -p $(dir $@)
	$(Q)sed 's|^ENOSHIM_VERSION = None.*|ENOSHIM_VERSION = "$(VERSION)"|' $< >$@ && chmod 755 $@

# lwIP alone, with the hooks stubbed (the first ephemeral port, patch 0005)
$(BUILD)/tests/test_lwip_port: tests/unit/test_lwip_port.c $(OBJ)/liblwip.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(LWIP_CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(OBJ)/liblwip.a $(LDFLAGS) -lcriterion

$(BUILD)/tests/test_%: tests/unit/test_%.c $(OBJ)/libstack.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(OBJ)/libstack.a $(LDFLAGS) -lcriterion $(CRYPTO_LIBS)

# the benchmark's load generator; integration tests use it too (t_time_wait)
$(BUILD)/bench/enobench: bench/enobench.c include/tcpinc.h
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LDFLAGS) -lpthread

$(BUILD)/tests/progs/%: tests/progs/%.c
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LDFLAGS)

$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LDFLAGS) -lsodium

# ---- tests -------------------------------------------------------------------
unit: all
	@TEST_STAGES=unit scripts/test-all $(BUILD)

fuzz-smoke: setup
	@scripts/fuzz smoke

integ: all
	@TEST_STAGES=integ scripts/test-all $(BUILD)

test: all
	@scripts/test-all $(BUILD)

san-test:
	@$(MAKE) all
	@$(MAKE) SAN=1 all
	@BUILD=build/san scripts/test-all build/san --san

demo: all
	@scripts/demo

bench: all
	@scripts/bench

# make install: what goes where is scripts/install's (it keeps a manifest of
# every file and directory it made, which make uninstall removes, exactly)
INSTALL_ENV = DESTDIR='$(DESTDIR)' BUILD='$(BUILD)' PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' \
  SBINDIR='$(SBINDIR)' PKGLIBDIR='$(PKGLIBDIR)' LIBEXECDIR='$(LIBEXECDIR)' INCLUDEDIR='$(INCLUDEDIR)' \
  DATADIR='$(DATADIR)' MANDIR='$(MANDIR)' PKGCONFIGDIR='$(PKGCONFIGDIR)' SYSCONFDIR='$(SYSCONFDIR)' \
  UNITDIR='$(UNITDIR)'

install: setup $(BUILD)/tund $(BUILD)/tund-nat $(BUILD)/libenoshim.so $(BUILD)/enorun $(EX_BINS) $(GEN_FILES)
	@$(INSTALL_ENV) scripts/install install

uninstall:
	@$(INSTALL_ENV) scripts/install uninstall

clean:
	rm -rf build

distclean: clean
	rm -rf third_party

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
