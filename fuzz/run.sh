#!/usr/bin/env bash
# Runs the libFuzzer targets built in build/fuzz/ (make fuzz-build).
# usage: fuzz/run.sh ci PERCENT TARGET...  |  fuzz/run.sh long SECONDS TARGET...
#   ci:   each target over its seeds (fuzz/corpus/<name>/, every file
#         once), then a fixed number of inputs (PERCENT of its budget
#         below; 0: the seeds only) from a fixed random seed, into a
#         scratch corpus that is thrown away: what make test runs.
#   long: SECONDS of fuzzing each, keeping new inputs in
#         build/fuzz/work/<name>/ across runs (fuzz/README.md: merging them
#         into the seeds).
# Any crash, leak, timeout, out-of-memory or sanitizer report fails: the
# input is written to build/fuzz/crashes/<name>-crash-<sha1> (or leak-,
# timeout-, oom-) and the log is printed.
set -euo pipefail

mode=$1 amount=$2
shift 2

# make test's inputs per target: about 5 s each here (2 cores, 2026-12).
# A count, not a time: with -seed fixed, -reload=0, no address
# randomisation and json-c's seedless hash (fuzz.h) libFuzzer then tries
# the same inputs on every machine, fast or slow, so a commit that passes
# passes everywhere (with a time budget and those left to chance, CI's
# fresh root once tried an input no run on the host had).
declare -A ci_runs=(
	[query]=120000 [headers]=350000 [fcgi_params]=45000 [json_body]=800000
	[jwt]=200000 [sse]=70000 [config]=28000 [busmsg]=1000000 [redis_reply]=500000
)
dir=build/fuzz
mkdir -p "$dir/crashes" "$dir/logs"
failed=()
start=$(date +%s)

# libFuzzer stops on the first report; a sanitizer message it did not
# count (a report from a thread, say) still fails through the log.
reported() { grep -qE '^==[0-9]+==ERROR|runtime error:|^SUMMARY: |property failed' "$1"; }

for name in "$@"; do
	bin=$dir/$name seeds=fuzz/corpus/$name log=$dir/logs/$name.log
	opts=(-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$dir/crashes/$name-"
	      -print_final_stats=1)
	[ -f "fuzz/dict/$name.dict" ] && opts+=(-dict="fuzz/dict/$name.dict")
	[ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz-build)" >&2; exit 2; }
	[ -d "$seeds" ] || { echo "fuzz: no seeds in $seeds" >&2; exit 2; }

	# 1. the seeds, each once, in a fixed order: a regression input fails
	# here whatever the fuzzing below happens to try
	mapfile -t files < <(find "$seeds" -type f | LC_ALL=C sort)
	if ! "$bin" "${opts[@]}" "${files[@]}" >"$log" 2>&1 || reported "$log"; then
		echo "fuzz: $name: a seed fails ($log):" >&2
		tail -n 60 "$log" >&2
		failed+=("$name")
		continue
	fi

	# 2. fuzzing from the seeds
	if [ "$mode" = ci ]; then
		[ -n "${ci_runs[$name]:-}" ] || { echo "fuzz: $name has no budget in ci_runs" >&2; exit 2; }
		runs=$(( ci_runs[$name] * amount / 100 ))
		if [ "$runs" -eq 0 ]; then
			echo "fuzz: $name: ${#files[@]} seeds ok"
			continue
		fi
		# a fixed seed and count, no corpus reloads (they go by the
		# clock): the same commit tries the same inputs, so a CI run
		# fails only for a change, never by luck or speed
		opts+=(-seed=1 -runs="$runs" -reload=0)
		work=$(mktemp -d "$dir/ci-$name.XXXXXX")
		# and no address randomisation: libFuzzer learns from the
		# values compared, pointers among them
		run=(setarch "$(uname -m)" -R "$bin")
	else
		opts+=(-max_total_time="$amount")
		run=("$bin")
		work=$dir/work/$name
		mkdir -p "$work"
	fi
	rc=0 t0=$(date +%s)
	"${run[@]}" "${opts[@]}" "$work" "$seeds" >>"$log" 2>&1 || rc=$?
	[ "$mode" = ci ] && rm -rf "$work"
	if [ "$rc" -ne 0 ] || reported "$log"; then
		echo "fuzz: $name: failed (exit $rc; $log):" >&2
		tail -n 60 "$log" >&2
		failed+=("$name")
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	echo "fuzz: $name: ${#files[@]} seeds ok, ${runs:-?} runs in $(( $(date +%s) - t0 )) s, no report"
done

echo "fuzz: $(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed ($(( $(date +%s) - start ))s)"
[ ${#failed[@]} -eq 0 ]
