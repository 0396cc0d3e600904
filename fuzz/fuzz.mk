# ---- libFuzzer targets (issue #15): make fuzz, make fuzz-ci ------------------
# Included from the Makefile. Each fuzz/<name>.c is one target, linked with
# the library compiled again by clang into build/fuzz/ (coverage, ASan,
# UBSan; the application's own objects are not touched). fuzz/README.md
# says how to run them, where crashes go and how to add a regression.
#
# fuzz-ci (run by `make test`): every target over its committed seeds
# (fuzz/corpus/<name>/, each file once), then a fixed number of inputs
# each from a fixed seed (fuzz/run.sh: the same inputs on any machine),
# FUZZ_CI_PERCENT of each target's budget (0: the seeds only). fuzz:
# FUZZ_TIME seconds each, keeping what it finds in build/fuzz/work/.
# FUZZ_TARGETS picks targets.

FUZZ_CC      ?= clang-14
FUZZ_TIME    ?= 300
FUZZ_CI_PERCENT ?= 100
FUZZ_DIR     := build/fuzz
FUZZ_NAMES   := query headers fcgi_params json_body jwt sse config busmsg redis_reply
FUZZ_TARGETS ?= $(FUZZ_NAMES)

# -fno-sanitize-recover: a UBSan report aborts, so libFuzzer sees a crash.
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -O1 -g $(WARNINGS) $(WERROR) -pthread $(FUZZ_SAN)
# The modules the targets reach, named rather than globbed: a module being
# written elsewhere in the tree does not hold up the fuzz build.
FUZZ_LIB_SRC := core/b64.c core/buf.c core/clock.c core/config.c core/cookie.c core/fcgi_record.c \
                core/http.c core/jsonf.c core/jsonflat.c core/listen.c core/query.c core/reqid.c \
                core/router.c core/timefmt.c versioning/versioning.c auth/auth.c auth/jwt.c \
                auth/token_memo.c sse/sse.c sse/writer.c sse/ring.c redis/busmsg.c redis/redis.c redis/sentinel.c \
                protect/breaker.c protect/retry.c api/jsontext.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)

.PHONY: fuzz-deps fuzz-build

# clang-14 and its runtimes (libclang-rt-14-dev holds libFuzzer, ASan and
# UBSan; clang-14 only recommends it): the deps.sh fuzz group.
fuzz-deps:
	@deploy/deps.sh build fuzz

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

# Library objects: instrumented for coverage, without libFuzzer's main.
$(FUZZ_DIR)/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	@$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

# An archive: each target links only the members it reaches.
$(FUZZ_DIR)/libfcgi_sse.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_DIR)/tgt/%.o: fuzz/%.c | fuzz-deps
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	@$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/tgt/%.o $(FUZZ_DIR)/libfcgi_sse.a
	@echo "  LINK  $@"
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

-include $(shell find $(FUZZ_DIR)/obj $(FUZZ_DIR)/tgt -name '*.d' 2>/dev/null)

fuzz-ci: fuzz-build
	fuzz/run.sh ci $(FUZZ_CI_PERCENT) $(FUZZ_TARGETS)

fuzz: fuzz-build
	fuzz/run.sh long $(FUZZ_TIME) $(FUZZ_TARGETS)
# ---- end of the fuzzing block -------------------------------------------------
