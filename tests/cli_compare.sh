#!/bin/sh
# shellcheck disable=SC2086,SC2016 # fixed argument lists are split on purpose; awk programs in single quotes
# Golden CLI test: `strata compare`.
#   - llama2-7b on 8 and 16 A100s and H100s (gbs 64, priced 1.5 and 3 per GPU-hour): a table of 4
#     rows ranked 1..4 by days to train, the H100s first, one plan line per row;
#   - --json: the keys the plot command relies on, 4 results ranked by time_to_train_s, prices
#     following their cluster, cost and tokens per unit checked by hand, each row's plan the one
#     `strata plan` ranks first (same spec, same iteration time, same breakdown keys);
#   - a cluster where nothing fits stays in the output, marked, last; nothing fits anywhere: exit 1;
#   - --tokens 15T scales the time to train by 50; a cluster JSON is accepted beside a preset;
#   - bad input exits 2 with one line naming the option, key or file;
#   - determinism: the same JSON twice (search_time_s aside).
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-compare

# flat FILE: flatten the JSON in FILE into FILE.flat; fails (with the reason on stderr) if not JSON
flat() { awk "$FLATTEN" "$1" >"$1.flat" 2>"$T/flat.err"; }
# get FLATFILE PATH: the value printed at PATH (empty if absent)
get() { awk -v p="$2" '$1 == p { print substr($0, length($1) + 2); exit }' "$1"; }
# row_of FLATFILE CLUSTER GPUS: the index in "results" of that cluster at that size (empty if none)
row_of() {
	awk -v c="\"$2\"" -v g="$3" '
		$1 ~ /^\.results\[[0-9]+\]\.cluster$/ && $2 == c { split($1, a, /[][]/); hc[a[2]] = 1 }
		$1 ~ /^\.results\[[0-9]+\]\.gpus$/ && $2 == g { split($1, a, /[][]/); hg[a[2]] = 1 }
		END { for (i in hc) if (i in hg) print i }' "$1"
}

echo "# strata: $STRATA"
MAIN="--model llama2-7b --clusters dgx-a100-80g,dgx-h100 --gpus 8,16 --gbs 64 --price-per-gpu-hour 1.5,3"

# ------------------------------------------------------------------ table
run compare $MAIN
cp "$T/out" "$T/main.txt"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ]; then ok "compare (2 clusters x 2 sizes, priced) exits 0, nothing on stderr"; else nok "compare $MAIN" "exit $rc, expected 0 and no stderr"; fi
if head -n 1 "$T/main.txt" | grep -q '^model llama2-7b .*gbs 64, seq 4096, .*300B tokens'; then
	ok "header: $(head -n 1 "$T/main.txt")"
else
	nok "compare header" "expected 'model llama2-7b ... gbs 64, seq 4096, ... 300B tokens', got: $(head -n 1 "$T/main.txt")"
fi
# rows follow the header line that starts with "rank"; columns are found by their header
awk '
	$1 == "rank" { for (i = 1; i <= NF; i++) { c[$i] = i }; inrows = 1; next }
	inrows && /^ *[0-9]+ / { print $1, $(c["cluster"]), $(c["gpus"]), $(c["days"]), $(c["cost"]), $(c["tokens/$"]); next }
	inrows { inrows = 0 }
' "$T/main.txt" >"$T/rows"
nrows=$(nlines "$T/rows")
if [ "$nrows" -eq 4 ] && awk '$1 != NR { exit 1 }' "$T/rows"; then
	ok "the table has 4 rows ranked 1..4"
else
	nok "compare table rows" "expected 4 rows ranked 1..4 under a 'rank ... days cost tokens/\$' header, got $nrows: $(tr '\n' ' ' <"$T/rows")"
fi
if [ "$nrows" -gt 0 ] && awk 'NR > 1 && $4 + 0 < prev { exit 1 } { prev = $4 + 0 } $5 + 0 <= 0 || $6 + 0 <= 0 { exit 1 }' "$T/rows"; then
	ok "days non-decreasing, cost and tokens/\$ positive ($(awk '{ printf "%s:%s ", $2, $4 }' "$T/rows"))"
else
	nok "compare table order" "days decrease or cost/tokens/\$ missing: $(tr '\n' ' ' <"$T/rows")"
fi
if [ "$(awk 'NR <= 2 { printf "%s ", $2 }' "$T/rows")" = "dgx-h100 dgx-h100 " ]; then
	ok "the H100 rows rank above the A100 rows"
else
	nok "compare ranking" "expected dgx-h100 in ranks 1 and 2, got: $(tr '\n' ' ' <"$T/rows")"
fi
nplan=$(grep -Ec '^[1-4]\. dgx-(a100-80g|h100) x (8|16): tp=' "$T/main.txt")
if [ "$nplan" -eq 4 ] && grep -q "^1\. $(awk 'NR == 1 { print $2 " x " $3 }' "$T/rows"): tp=" "$T/main.txt"; then
	ok "one plan line per row ('1. CLUSTER x GPUS: tp=...'), matching the table"
else
	nok "compare plan lines" "expected 4 lines 'N. CLUSTER x GPUS: tp=...' with line 1 for the table's rank 1, got $nplan"
fi

# ------------------------------------------------------------------ --json
run compare $MAIN --json
cp "$T/out" "$T/main.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && flat "$T/main.json"; then
	ok "compare --json: exit 0, nothing on stderr, one JSON object on stdout"
else
	nok "compare --json" "exit $rc, expected 0, no stderr and one JSON object" "$(cat "$T/flat.err" 2>/dev/null)"
	: >"$T/main.json.flat"
fi
F=$T/main.json.flat
missing=
[ "$(get "$F" .model)" = '"llama2-7b"' ] || missing="$missing model"
for k in params tokens search_time_s; do get "$F" ".$k" | grep -Eq '^[0-9]' || missing="$missing $k"; done
[ "$(get "$F" .gbs)" = 64 ] || missing="$missing gbs"
[ "$(get "$F" .seq)" = 4096 ] || missing="$missing seq"
n=$(awk '$1 ~ /^\.results\[[0-9]+\]\.rank$/' "$F" | wc -l)
i=0
while [ $i -lt "$n" ]; do
	R=".results[$i]"
	[ "$(get "$F" "$R.rank")" = $((i + 1)) ] || missing="$missing $R.rank"
	for k in cluster gpu spec; do get "$F" "$R.$k" | grep -q '^"' || missing="$missing $R.$k"; done
	get "$F" "$R.gpus" | grep -Eq '^(8|16)$' || missing="$missing $R.gpus"
	[ "$(get "$F" "$R.fits")" = true ] || missing="$missing $R.fits"
	for k in iteration_time_s tokens_per_s mfu model_tflops_per_gpu memory_peak_gib gpu_memory_gib headroom_gib \
		time_to_train_s time_to_train_days price_per_gpu_hour cost_to_train tokens_per_dollar evaluated; do
		get "$F" "$R.$k" | grep -Eq '^[0-9]' || missing="$missing $R.$k"
	done
	grep -q "^\.results\[$i\]\.breakdown_s\.compute " "$F" || missing="$missing $R.breakdown_s"
	i=$((i + 1))
done
if [ "$n" -eq 4 ] && [ -z "$missing" ]; then
	ok "4 results, ranks 1..4, each with every key of the contract (numbers where a plan fits)"
else
	nok "compare --json keys" "$n results (expected 4); missing or of the wrong type:$missing"
fi
if awk '$1 ~ /^\.results\[[0-9]+\]\.time_to_train_s$/ { v = $2 + 0; if (seen && v < prev) bad = 1; prev = v; seen = 1 } END { exit bad || !seen }' "$F"; then
	ok "results are ordered by time_to_train_s"
else
	nok "compare --json order" "time_to_train_s decreases somewhere in \"results\""
fi
# per result: cluster price gpus tokens_per_s time_to_train_s cost tokens_per_dollar
awk '
	$1 == ".tokens" { tokens = $2 + 0 }
	match($1, /^\.results\[[0-9]+\]\./) {
		i = substr($1, 10, RLENGTH - 11) + 0; k = substr($1, RLENGTH + 1); v[i, k] = $2; if (i + 1 > n) n = i + 1
	}
	END {
		for (i = 0; i < n; i++)
			print v[i, "cluster"], v[i, "price_per_gpu_hour"], v[i, "gpus"], v[i, "tokens_per_s"], v[i, "time_to_train_s"],
			      v[i, "cost_to_train"], v[i, "tokens_per_dollar"], tokens, v[i, "time_to_train_days"]
	}' "$F" >"$T/json.rows"
if [ "$(nlines "$T/json.rows")" -eq 4 ] && awk '
	function near(a, b) { d = a - b; if (d < 0) d = -d; return d <= 1e-6 * (b < 0 ? -b : b) }
	{
		want = $1 == "\"dgx-a100-80g\"" ? 1.5 : ($1 == "\"dgx-h100\"" ? 3 : -1)
		if ($2 + 0 != want) { print "price " $2 " for " $1 > "/dev/stderr"; bad = 1 }
		if (!near($5, $8 / $4)) { print "time " $5 " != tokens / tokens_per_s " > "/dev/stderr"; bad = 1 }
		if (!near($6, $5 / 3600 * $3 * $2)) { print "cost " $6 " != hours x gpus x price" > "/dev/stderr"; bad = 1 }
		if (!near($7, $4 * 3600 / ($3 * $2))) { print "tokens/$ " $7 " wrong" > "/dev/stderr"; bad = 1 }
		if (!near($9, $5 / 86400)) { print "days " $9 " != s / 86400" > "/dev/stderr"; bad = 1 }
	}
	END { exit bad }' "$T/json.rows" 2>"$T/arith.err"; then
	ok "prices follow their cluster; time = tokens / tokens_per_s, cost = h x GPUs x price, tokens/\$ = tokens_per_s x 3600 / (GPUs x price)"
else
	nok "compare --json arithmetic" "$(cat "$T/arith.err")"
fi
# text and JSON: the same order and the same days
awk '{ printf "%s %s %.2f\n", $2, $3, $4 }' "$T/rows" >"$T/text.key"
awk '{ gsub(/"/, "", $1); printf "%s %s %.2f\n", $1, $3, $9 }' "$T/json.rows" >"$T/json.key"
if [ -s "$T/text.key" ] && cmp -s "$T/text.key" "$T/json.key"; then
	ok "the table and the JSON agree on order and days"
else
	nok "text vs JSON" "table: $(tr '\n' ';' <"$T/text.key") JSON: $(tr '\n' ';' <"$T/json.key")"
fi

# one cost path: the dgx-h100 x 16 row is what `strata plan` ranks first
j=$(row_of "$F" dgx-h100 16)
run plan --model llama2-7b --cluster dgx-h100 --gpus 16 --gbs 64 --top 1 --json
if [ -n "$j" ] && [ $rc -eq 0 ] && flat "$T/out"; then
	P=$T/out.flat
	ks_plan=$(awk '$1 ~ /^\.plans\[0\]\.breakdown_s\./ { sub(/.*\./, "", $1); printf "%s ", $1 }' "$P")
	ks_cmp=$(awk -v p=".results[$j].breakdown_s." 'index($1, p) == 1 { sub(/.*\./, "", $1); printf "%s ", $1 }' "$F")
	if [ "$(get "$P" '.plans[0].spec')" = "$(get "$F" ".results[$j].spec")" ] &&
		[ "$(get "$P" '.plans[0].iteration_time_s')" = "$(get "$F" ".results[$j].iteration_time_s")" ] &&
		[ -n "$ks_plan" ] && [ "$ks_plan" = "$ks_cmp" ]; then
		ok "the dgx-h100 x 16 row is plan's best: same spec, iteration_time_s $(get "$P" '.plans[0].iteration_time_s'), breakdown keys"
	else
		nok "compare vs plan" "plan: $(get "$P" '.plans[0].spec') $(get "$P" '.plans[0].iteration_time_s') [$ks_plan]" \
			"compare: $(get "$F" ".results[$j].spec") $(get "$F" ".results[$j].iteration_time_s") [$ks_cmp]"
	fi
else
	nok "compare vs plan" "no dgx-h100 x 16 row ('$j') or plan --json failed (exit $rc)"
fi

# ------------------------------------------------------------------ no plan fits
run compare --model llama2-70b --clusters a10-pcie-8,dgx-h100 --gpus 8 --gbs 64 --json
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && flat "$T/out" &&
	[ "$(get "$T/out.flat" '.results[1].cluster')" = '"a10-pcie-8"' ] && [ "$(get "$T/out.flat" '.results[1].fits')" = false ] &&
	[ "$(get "$T/out.flat" '.results[1].rank')" = 2 ] && [ "$(get "$T/out.flat" '.results[1].spec')" = null ] &&
	[ "$(get "$T/out.flat" '.results[1].time_to_train_s')" = null ] && [ "$(get "$T/out.flat" '.results[0].fits')" = true ]; then
	ok "llama2-70b: the 8 x A10 row (listed first) fits nothing, stays in the JSON as rank 2 with fits false and nulls; exit 0"
else
	nok "compare with a row that fits nothing" "exit $rc; expected 0 and results[1] = a10-pcie-8, rank 2, fits false, spec null"
fi
run compare --model llama2-70b --clusters a10-pcie-8,dgx-h100 --gpus 8 --gbs 64
if [ $rc -eq 0 ] && grep -q '^2\. a10-pcie-8 x 8: no plan fits' "$T/out" && grep -q '^ *2 a10-pcie-8 .* - *$' "$T/out"; then
	ok "  ... and the table marks it: '$(grep '^2\. a10' "$T/out" | cut -c1-50)...'"
else
	nok "compare table with a row that fits nothing" "exit $rc; expected a row '2 a10-pcie-8 ... -' and a line '2. a10-pcie-8 x 8: no plan fits'"
fi
run compare --model gpt-1t --clusters a10-pcie-8 --gpus 8 --json
if [ $rc -eq 1 ] && [ ! -s "$T/err" ] && flat "$T/out" && [ "$(get "$T/out.flat" '.results[0].fits')" = false ]; then
	ok "gpt-1t on 8 A10s: nothing fits anywhere, exit 1, the JSON still printed, nothing on stderr"
else
	nok "compare where nothing fits" "exit $rc, expected 1, no stderr and a JSON result with fits false"
fi

# ------------------------------------------------------------------ --tokens, cluster JSON
run compare --model llama2-7b --clusters dgx-h100 --gbs 64 --tokens 15T --json
if [ $rc -eq 0 ] && flat "$T/out" && [ "$(get "$T/out.flat" .tokens)" = 1.5e13 ] &&
	awk -v a="$(get "$T/out.flat" '.results[0].time_to_train_s')" -v b="$(get "$F" ".results[$(row_of "$F" dgx-h100 8)].time_to_train_s")" \
		'BEGIN { r = a / b; exit !(r > 50 * (1 - 1e-9) && r < 50 * (1 + 1e-9)) }'; then
	ok "--tokens 15T: tokens 1.5e13, 50 times the time of the default 300B on the same cluster"
else
	nok "compare --tokens 15T" "exit $rc; expected tokens 1.5e13 and 50x the time of the dgx-h100 x 8 row above"
fi
run compare --model llama2-7b --clusters "$SRCDIR/tests/data/validation/vtrain_cluster.json,dgx-h100" --gpus 8 --gbs 64 --json
if [ $rc -eq 0 ] && flat "$T/out" && grep -q '\.cluster "vtrain-a100-80g"$' "$T/out.flat"; then
	ok "a cluster JSON beside a preset, sized to 8 GPUs"
else
	nok "compare with a cluster JSON" "exit $rc; expected a result for cluster vtrain-a100-80g"
fi

# ------------------------------------------------------------------ bad input
# bad NEEDLE ARGS...: exit 2, nothing on stdout, one line on stderr containing NEEDLE
bad() {
	needle=$1
	shift
	run compare "$@"
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -Fq -e "$needle" "$T/err"; then
		ok "bad input exits 2 with one line: $(cat "$T/err")"
	else
		nok "compare bad input" "exit $rc; expected 2, no stdout and one stderr line containing: $needle"
	fi
}
bad "key 'cluster': 'no-such-cluster'" --model llama2-7b --clusters dgx-h100,no-such-cluster
bad "--price-per-gpu-hour" $MAIN --price-per-gpu-hour 1.5
bad "--tokens" --model llama2-7b --clusters dgx-h100 --tokens 12X
bad "key 'gpus': 12" --model llama2-7b --clusters dgx-h100 --gpus 12
bad "option '--pue'" --model llama2-7b --clusters dgx-h100 --pue 0.5
bad "option '--power-fraction'" --model llama2-7b --clusters dgx-h100 --power-fraction 1.5

# energy and its cost (issue 16): the columns appear only when asked for, the JSON gains "energy"
run compare --model llama2-7b --clusters dgx-h100,gb200-nvl72 --gpus 8 --gbs 64 --price-per-kwh 0.1
if [ $rc -eq 0 ] && grep -q "tokens/J" "$T/out" && grep -q "total_cost" "$T/out" && grep -q "PUE 1.20" "$T/out"; then
	ok "compare --price-per-kwh: power, MWh, tokens/J and costs, assumptions stated"
else
	nok "compare energy" "exit $rc"
fi
run compare --model llama2-7b --clusters dgx-h100 --gpus 8 --gbs 64 --energy --json
if [ $rc -eq 0 ] && grep -q '"energy_mwh"' "$T/out" && grep -q '"tokens_per_joule"' "$T/out"; then
	ok "compare --energy --json: each row carries its energy"
else
	nok "compare --energy --json" "exit $rc"
fi
run compare --model llama2-7b --clusters dgx-h100 --gpus 8 --gbs 64 --json
if [ $rc -eq 0 ] && ! grep -q '"energy"' "$T/out"; then ok "compare without energy options: no energy"; else nok "compare no energy" "exit $rc"; fi
bad "--clusters" --model llama2-7b --clusters dgx-h100,
bad "--clusters" --model llama2-7b
bad "key 'model'" --model no-such-model --clusters dgx-h100

# ------------------------------------------------------------------ determinism, help
run compare $MAIN --json
if [ $rc -eq 0 ] && flat "$T/out"; then
	grep -v '^\.search_time_s ' "$F" >"$T/a.det"
	grep -v '^\.search_time_s ' "$T/out.flat" >"$T/b.det"
	if cmp -s "$T/a.det" "$T/b.det" && [ -s "$T/a.det" ]; then
		ok "two identical compare --json runs give identical output (search_time_s aside)"
	else
		nok "compare determinism" "the two runs differ: $(cmp "$T/a.det" "$T/b.det" 2>&1)"
	fi
else
	nok "compare --json (again)" "exit $rc, expected 0 with one JSON object"
fi
run compare --help
if [ $rc -eq 0 ] && grep -q -e '--price-per-gpu-hour' "$T/out" && grep -q 'Brown et al. 2020' "$T/out"; then
	ok "--help names the options and the source of the 300B default"
else
	nok "compare --help" "exit $rc; expected 0 and the options with the GPT-3 source"
fi

finish_tests
