#!/bin/sh
# fuzz.sh: runs strata's fuzz targets (tests/fuzz/, issue 20) under libFuzzer with ASan and UBSan.
# Usage: scripts/fuzz.sh SECONDS [TARGET...] (default: every target, SECONDS each, one after the
# other). Needs clang (Debian's: apt-get install clang) and git. Builds in build-fuzz/ from a copy of
# the working tree's files (build-fuzz/tree: configure refuses a second build beside an in-tree one);
# what a run adds to a corpus lands in build-fuzz/corpus/TARGET, the committed seeds
# (tests/fuzz/corpus/TARGET) are read, not written. A crash leaves build-fuzz/crash-* and stops the
# script with exit 1: copy the file into tests/fuzz/corpus/TARGET once fixed, so that make check
# replays it. Prints each target's executions. FUZZ_TIMEOUT (default 60) is libFuzzer's -timeout, seconds
# of wall clock per input: at nice 19 beside other work one input of 2.6 s of CPU (a model of 40,825
# layers, lowered layer by layer under ASan) took 24 s of wall clock, which -timeout=20 called a hang.
set -eu
[ $# -ge 1 ] || { echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2; exit 2; }
secs=$1
shift
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build-fuzz
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 2; }
mkdir -p "$build/tree"
# Two fuzz.sh at once (one target each, on two cores) share the build: the copy and the build run
# under a lock (flock, util-linux), so one never links a target while the other copies the tree.
build_tree() {
	(cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 tar cf -) | (cd "$build/tree" && tar xf -)
	cd "$build/tree"
	[ -x configure ] || ./bootstrap >/dev/null 2>&1
	[ -f Makefile ] || ./configure -q CC=clang \
		CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
	make -s -j2 fuzz >../build.log 2>&1 || { tail -n 30 ../build.log; exit 1; }
}
if command -v flock >/dev/null; then
	exec 9>"$build/.lock"
	flock 9
	(build_tree) || exit 1
	flock -u 9
else
	(build_tree) || exit 1
fi
cd "$build"
targets=${*:-"model cluster plan spec profile kineto graph validation settings clusterarg runs ilpplan plot"}
for t in $targets; do
	mkdir -p "corpus/$t"
	log=fuzz-$t.log
	if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "tree/tests/fuzz/fuzz-$t" \
		-max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-60}" -rss_limit_mb=4096 -dict="$src/tests/fuzz/strata.dict" \
		-close_fd_mask=3 "corpus/$t" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1; then
		tail -n 40 "$log"
		echo "fuzz.sh: target $t failed: $build/$log" >&2
		exit 1
	fi
	runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' "$log")
	echo "$t: ${runs:-?}, corpus $(ls "corpus/$t" | wc -l) files"
done
