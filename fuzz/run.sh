#!/usr/bin/env bash
# Runs the libFuzzer targets built in build/fuzz/ (make fuzz-build).
# usage: fuzz/run.sh ci|long SECONDS TARGET...
#   ci:   each target over its seeds (fuzz/corpus/<name>/, every file
#         once), then SECONDS of fuzzing from them into a scratch corpus
#         that is thrown away: what make test runs.
#   long: SECONDS of fuzzing each, keeping new inputs in
#         build/fuzz/work/<name>/ across runs (fuzz/README.md: merging them
#         into the seeds).
# Any crash, leak, timeout, out-of-memory or sanitizer report fails: the
# input is written to build/fuzz/crashes/<name>-crash-<sha1> (or leak-,
# timeout-, oom-) and the log is printed.
set -euo pipefail

mode=$1 secs=$2
shift 2
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
		# a fixed seed: the same commit explores the same inputs, so a
		# CI run fails only for a change, never by luck of the draw
		opts+=(-seed=1)
		work=$(mktemp -d "$dir/ci-$name.XXXXXX")
	else
		work=$dir/work/$name
		mkdir -p "$work"
	fi
	rc=0
	"$bin" "${opts[@]}" -max_total_time="$secs" "$work" "$seeds" >>"$log" 2>&1 || rc=$?
	[ "$mode" = ci ] && rm -rf "$work"
	if [ "$rc" -ne 0 ] || reported "$log"; then
		echo "fuzz: $name: failed (exit $rc; $log):" >&2
		tail -n 60 "$log" >&2
		failed+=("$name")
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	echo "fuzz: $name: ${#files[@]} seeds ok, ${runs:-?} runs in ${secs}s, no report"
done

echo "fuzz: $(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed ($(( $(date +%s) - start ))s)"
[ ${#failed[@]} -eq 0 ]
