#!/bin/sh
# The layering of README "Architecture": scripts/check_layers.sh must pass on the tree, and must
# fail, naming the file and line, on copies of the tree with one wrong include each: a layer using
# one above it, a private header of another layer, a library header out of its room, a path with
# "../", the umbrella header, and JSON in a file that is not listed as reading it.
# Environment (set by automake): SRCDIR. Exit 0 pass, 1 fail.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
check="$SRCDIR/scripts/check_layers.sh"
fail=0

if out=$(sh "$check" "$SRCDIR"); then
	echo "ok: the tree keeps its layers"
else
	printf 'FAIL: the tree breaks its layers:\n%s\n' "$out"
	fail=1
fi

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
# file, line to append, what the message must say
while IFS='|' read -r file line want; do
	[ -n "$file" ] || continue
	rm -rf "$tmp/t" && mkdir "$tmp/t" || exit 99
	(cd "$SRCDIR" && find src cost search traces exec profiler \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) -print |
		tar cf - -T -) | (cd "$tmp/t" && tar xf -) || exit 99
	printf '%s\n' "$line" >>"$tmp/t/$file"
	if out=$(sh "$check" "$tmp/t"); then
		echo "FAIL: '$line' in $file was not caught"
		fail=1
	elif printf '%s\n' "$out" | grep -q "^$file:[0-9]*: .*$want"; then
		echo "ok: caught $file: $(printf '%s\n' "$out" | head -n 1 | sed 's/^[^ ]* //')"
	else
		printf 'FAIL: %s in %s: expected a line naming the file with "%s", got:\n%s\n' "$line" "$file" "$want" "$out"
		fail=1
	fi
done <<'CASES'
cost/comm.c|#include "src/sim/sim.h"|layer cost (cost/) may not use layer sim
src/core/plan.c|#include "src/io/io.h"|layer core (src/core/) may not use layer io
search/enumerate.c|#include "src/lower/lower.h"|layer search (search/) may not use layer lower
src/lower/lower.c|#include "search/ilp.h"|a private header of search/
src/sim/sim.c|#include "cost/cost_private.h"|a private header of cost/
search/enumerate.c|#include <jansson.h>|jansson.h outside
search/autoshard.c|#include <igraph.h>|igraph outside search/graph.c
search/stage_dp.c|#include <glpk.h>|glpk.h outside search/ilp.c
src/sim/sim.c|#include <cuda_runtime_api.h>|CUDA header
src/io/model_io.c|#include "../core/core.h"|includes with ../
src/report/emit.c|#include "src/strata.h"|umbrella
src/cli/cmd_sim.c|#include "src/io/jsonutil.h"|not one of the files that read or write JSON
CASES

[ $fail -eq 0 ] && echo "PASS: layers" || echo "FAIL: layers"
exit $fail
