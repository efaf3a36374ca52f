# enoshim — top-level Makefile
#
#   make            install missing packages, fetch lwIP, build everything
#   make demo       the main job: build, then run scripts/demo
#   make test       unit tests, fuzz smoke, integration tests (root)
#   make SAN=1 ...  the same with ASan+UBSan, into build/san/
#   make bench      scripts/bench (performance comparison, see README)
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

.PHONY: all setup deps demo test unit integ fuzz-smoke bench clean distclean san-test
all: setup $(BUILD)/tund $(BUILD)/tund-nat $(BUILD)/libenoshim.so $(BUILD)/enorun $(BUILD)/enoctl \
     $(UNIT_BINS) $(PROG_BINS) $(EX_BINS) $(BUILD)/bench/enobench

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

$(BUILD)/enorun: scripts/enorun
	@mkdir -p $(dir $@)
	install -m 755 $< $@

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

clean:
	rm -rf build

distclean: clean
	rm -rf third_party

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
