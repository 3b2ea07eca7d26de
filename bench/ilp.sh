#!/bin/sh
# bench/ilp.sh: the operator-level planner's speed and ILP size (issue 4, "Performance").
#   GPT-3 175B (96 layers) on 64 A100s and the 1T model (128 layers) on 512 A100s, gbs as in
#   Narayanan et al. SC'21, mbs searched over 1, 2, 4, 8. Prints the wall time, peak RSS, ILPs
#   solved and the largest stage ILP (rows x columns after strata's reductions).
# Usage: bench/ilp.sh [path/to/strata]   (default: ./strata)
STRATA=${1:-./strata}
[ -x "$STRATA" ] || { echo "usage: $0 path/to/strata" >&2; exit 2; }
echo "machine: $(uname -m), $(nproc) cores, $(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')"
for job in "gpt3-175b 64 1536" "gpt-1t 512 3072"; do
	set -- $job
	out=$(mktemp)
	/usr/bin/time -f "%e %M" -o "$out.time" "$STRATA" plan --search ilp --model "$1" --cluster dgx-a100-80g \
		--gpus "$2" --gbs "$3" --json >"$out" || { echo "$1: strata failed" >&2; exit 1; }
	read -r wall rss <"$out.time"
	awk -v m="$1" -v g="$2" -v wall="$wall" -v rss="$rss" '
		/"ilp_solves"/ { gsub(/[,]/, "", $2); solves = $2 }
		/"nodes"/ { gsub(/[,]/, "", $2); nn = $2 }
		/"variables"/ { gsub(/[,]/, "", $2); if ($2 > bv) { bv = $2; bn = nn } }
		/"rows"/ { gsub(/[,]/, "", $2); r = $2 }
		/"cols"/ { gsub(/[,]/, "", $2); if (r * $2 > best) { best = r * $2; br = r; bc = $2 } }
		/"iteration_time_s"/ { gsub(/[,]/, "", $2); it = $2 }
		/"search_time_s"/ { gsub(/[,]/, "", $2); st = $2 }
		END { printf "%-10s on %4d GPUs: search %.2f s (wall %s s, %d MiB), %d ILPs, largest stage ILP %d nodes / %d variables (%d x %d for GLPK), iteration %.1f s\n",
		             m, g, st, wall, rss / 1024, solves, bn, bv, br, bc, it }' "$out"
	rm -f "$out" "$out.time"
done
