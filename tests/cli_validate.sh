#!/bin/sh
# tests/cli_validate.sh: `strata validate --points FILE`: each point's predicted time is what
# `strata estimate --json` (or `strata sim --json`) prints for the same model, cluster, GPUs and
# plan; the summary per set and tau-b per rank group on the fixture (hand-checked counts); the
# filters --set and --command, --json, --csv; the same bytes twice; every bad bundle refused with
# exit 2 and one line naming the file and the key. The fixture (tests/data/validation/
# fixture_points.json) is made up for this test: its measured times are not data.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests cli-validate

FIX=$SRCDIR/tests/data/validation/fixture_points.json
BAD=$SRCDIR/tests/data/validation/bad

# the fixture keeps each model and cluster object on one line ("    "KEY": {...},"): cut out as
# files, they are the same inputs for `strata estimate --model FILE --cluster FILE`
for k in l7 g175 h100; do
	sed -n "s/^    \"$k\": \({.*}\),\{0,1\}\$/\1/p" "$FIX" >"$T/$k.json"
done
if [ -s "$T/l7.json" ] && [ -s "$T/g175.json" ] && [ -s "$T/h100.json" ]; then
	ok "the fixture's model and cluster objects cut out as files"
else
	nok "fixture layout" "expected one line per model and cluster object in $FIX"
fi

# field PATH: the value of PATH in $T/out.flat (awk "$FLATTEN" of a JSON output)
field() { awk -v p="$1" '$1 == p { sub(/^[^ ]* /, ""); print; exit }' "$T/out.flat"; }

# ------------------------------------------------------------------ the same numbers as estimate/sim
for c in estimate sim; do
	run validate --points "$FIX" --command "$c" --json
	if [ $rc -ne 0 ] || ! awk "$FLATTEN" "$T/out" >"$T/out.flat"; then
		nok "validate --command $c --json" "exit $rc or not JSON"
		continue
	fi
	cp "$T/out.flat" "$T/validate-$c.flat"
	bad=""
	i=0
	# the rows compared carry a predicted time, and under estimate the one that does not fit (strata
	# sim stops at the first instruction over the memory and prints no time); each equals the command's
	rows="0 1 2 3 4"
	[ "$c" = sim ] && rows="0 1 2 3"
	for row in $rows; do
		model=$(field ".rows[$row].model" | tr -d '"')
		gpus=$(field ".rows[$row].gpus")
		plan=$(field ".rows[$row].plan" | tr -d '"')
		got=$(field ".rows[$row].predicted_s")
		"$STRATA" "$c" --model "$T/$model.json" --cluster "$T/h100.json" --gpus "$gpus" --plan "$plan" --json \
			>"$T/one.json" 2>/dev/null
		want=$(awk "$FLATTEN" "$T/one.json" 2>/dev/null | awk '$1 == ".iteration_time_s" { print $2; exit }')
		[ -n "$got" ] && [ "$got" = "$want" ] || bad="$bad row $row: validate $got, $c '$want';"
		i=$((i + 1))
	done
	if [ -z "$bad" ] && [ $i -ge 4 ]; then
		ok "validate --command $c: each predicted_s is strata $c --json's iteration_time_s for the same inputs"
	else
		nok "validate --command $c numbers" "$bad"
	fi
done
# the out-of-memory row under sim: strata sim stops there (exit 1); validate reports the whole
# iteration's peak, the same as the estimate's here
if [ "$(awk '$1 == ".rows[4].status" { print $2 }' "$T/validate-sim.flat")" = '"nofit"' ] &&
	[ "$(awk '$1 == ".rows[4].fits" { print $2 }' "$T/validate-sim.flat")" = false ]; then
	ok "validate --command sim: the point that does not fit is reported as such"
else
	nok "validate --command sim nofit" "$(grep '^.rows\[4\]\.\(status\|fits\)' "$T/validate-sim.flat")"
fi

# ------------------------------------------------------------------ the text report
run validate --points "$FIX"
cp "$T/out" "$T/text1"
# the table's numbers are the JSON's, rounded: predicted_s to 3 decimals
pred_ok=1
for row in 0 1 2 3; do
	p=$(awk -v r="$row" '$1 == ".rows[" r "].predicted_s" { printf "%.3f", $2 }' "$T/validate-estimate.flat")
	id=$(awk -v r="$row" '$1 == ".rows[" r "].id" { gsub(/"/, "", $2); print $2 }' "$T/validate-estimate.flat")
	awk -v id="$id" -v p="$p" '$1 == id { for (i = 2; i <= NF; i++) if ($i == p) found = 1 } END { exit !found }' \
		"$T/out" || pred_ok=0
done
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ $pred_ok -eq 1 ]; then
	ok "validate prints each compared row with the JSON's predicted time"
else
	nok "validate text rows" "exit $rc; a row's predicted time is not the JSON's"
fi
if grep -q '^fx-nofit .* does not fit ([0-9][0-9]*\.[0-9] GiB > 80\.0 GiB)$' "$T/out" &&
	grep -q "^fx-rejected .* rejected: key 'tp': heads (32) not divisible by tp (3)\$" "$T/out"; then
	ok "rows that do not fit or are rejected say so, with the peak or strata's reason"
else
	nok "nofit/rejected rows" "$(grep '^fx-\(nofit\|rejected\)' "$T/out")"
fi
# per set: strict = gbs64, gbs128 (compared) and the rejected one; loose = gbs256, gbs512 and nofit
if grep -q '^SUMMARY strict rows=3 compared=2 rejected=1 nofit=0 errors=0 ' "$T/out" &&
	grep -q '^SUMMARY loose rows=3 compared=2 rejected=0 nofit=1 errors=0 ' "$T/out" &&
	grep -q '^SUMMARY all rows=6 compared=4 rejected=1 nofit=1 errors=0 ' "$T/out"; then
	ok "SUMMARY per set and all: rows, compared, rejected, does not fit"
else
	nok "SUMMARY counts" "$(grep '^SUMMARY' "$T/out")"
fi
# MAE and max |error| of all, recomputed here from the JSON rows
want=$(awk '$1 ~ /^\.rows\[[0-9]+\]\.error_pct$/ && $2 != "null" { e = $2 < 0 ? -$2 : $2; s += e; n++; if (e > m) m = e }
	END { printf "mae_pct=%.3f max_abs_pct=%.3f", s / n, m }' "$T/validate-estimate.flat")
if grep -q "^SUMMARY all .* $want\$" "$T/out"; then
	ok "MAE and max |error| are those of the compared rows ($want)"
else
	nok "MAE" "want '$want'; $(grep '^SUMMARY all' "$T/out")"
fi
# tau-b: predicted times grow with gbs (64 < 128 < 256 < 512); measured 3, 6, 6, 12: of the 6 pairs
# 5 concordant, 1 tied in measured (gbs128/gbs256), none discordant: 5 / sqrt(5 * 6) = 0.9129
if grep -q '^TAU group=fx-rank rows=4 compared=4 tau_b=0\.9129$' "$T/out" &&
	grep -q 'fx-rank .*(pairs 6: concordant 5, discordant 0, tied measured 1, tied predicted 0)' "$T/out" &&
	grep -q '(2 points in no rank group)' "$T/out"; then
	ok "tau-b of the rank group with a tie: 0.9129 (5 concordant, 1 tied pair)"
else
	nok "tau-b" "$(grep -i 'tau' "$T/out")"
fi
run validate --points "$FIX"
if cmp -s "$T/out" "$T/text1"; then
	ok "the same bytes twice"
else
	nok "determinism" "two runs differ"
fi

# ------------------------------------------------------------------ --set, --csv, --json summary
run validate --points "$FIX" --set strict
if [ $rc -eq 0 ] && [ "$(grep -c '^SUMMARY' "$T/out")" -eq 1 ] && grep -q '^SUMMARY strict rows=3 ' "$T/out" &&
	! grep -q '^fx-gbs256 ' "$T/out" && grep -q '^fx-gbs64 ' "$T/out"; then
	ok "--set strict: only the strict points and their summary"
else
	nok "--set strict" "exit $rc; $(grep '^SUMMARY' "$T/out")"
fi
run validate --points "$FIX" --csv "$T/acc.csv"
if [ $rc -eq 0 ] && [ "$(head -n 1 "$T/acc.csv")" = "name,measured,predicted,set" ] &&
	[ "$(nlines "$T/acc.csv")" -eq 5 ] && grep -q '^"fx-gbs512",12,[0-9.]*,loose$' "$T/acc.csv" &&
	! grep -q 'fx-nofit' "$T/acc.csv"; then
	ok "--csv: the 4 compared rows as name,measured,predicted,set"
else
	nok "--csv" "exit $rc; $(cat "$T/acc.csv" 2>/dev/null)"
fi
# without gnuplot the plot still writes its data file beside the image (exit 2 then)
run plot accuracy --input "$T/acc.csv" --out "$T/acc.svg"
if grep -q '"fx-gbs512"' "$T/acc.dat" 2>/dev/null; then
	ok "strata plot accuracy reads the CSV"
else
	nok "plot accuracy" "exit $rc; files: $(ls "$T" | tr '\n' ' ')"
fi
if [ "$(awk '$1 == ".summary.all.compared" { print $2 }' "$T/validate-estimate.flat")" = 4 ] &&
	[ "$(awk '$1 == ".rank_groups[0].tau_b" { print $2 }' "$T/validate-estimate.flat")" != null ] &&
	[ "$(awk '$1 == ".rows[5].predicted_s" { print $2 }' "$T/validate-estimate.flat")" = null ] &&
	[ "$(awk '$1 == ".rows[5].status" { print $2 }' "$T/validate-estimate.flat")" = '"rejected"' ]; then
	ok "--json: summary per set, rank groups, null where there is no number"
else
	nok "--json summary" "$(grep '^\.summary\.all\|^\.rank_groups\[0\]\|^\.rows\[5\]' "$T/validate-estimate.flat")"
fi

# ------------------------------------------------------------------ bad input: exit 2, one line
# file -> the key the message must name ("" for errors of the file as a whole)
while read -r name key; do
	f=$BAD/$name.json
	run validate --points "$f"
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -qF "$f" "$T/err" &&
		{ [ "$key" = - ] || grep -qF "key '$key'" "$T/err"; }; then
		if [ "$key" = - ]; then what="the file"; else what="the file and key '$key'"; fi
		ok "bad bundle $name: exit 2, one line naming $what"
	else
		nok "bad bundle $name" "exit $rc (want 2), want one line naming $f and key '$key'"
	fi
done <<'EOF'
malformed -
not_object -
unknown_top extra_key
missing_points points
empty_points points
missing_models models
unknown_model points[0].model
unknown_cluster points[0].cluster
missing_measured points[0].measured_s
zero_measured points[0].measured_s
bad_set points[0].set
duplicate_id points[1].id
point_unknown_key points[0].gpu
gpus_type points[0].gpus
group_space points[0].rank_group
model_bad_value models.m.layers
model_finalize models.m.kv_heads
model_hf models.m
cluster_nested clusters.c.inter_node.nic_gbps
cluster_gpu_peak clusters.c.gpu.peak_tflops.bf16
EOF
n=0
for f in "$BAD"/*.json; do [ -f "$f" ] && n=$((n + 1)); done
if [ "$n" -eq 20 ]; then
	ok "every bad bundle under tests/data/validation/bad is checked above ($n)"
else
	nok "bad bundles" "$n files, 20 checked: add the new ones to the list"
fi

# usage errors: exit 2, one line (the wording of the shared options is tests/cli_options.sh's)
for args in "" "--points $FIX --command simulate" "--points $FIX --set medium" "--points $T/no-such.json" \
	"--points $FIX --model llama2-7b" "--points $FIX extra"; do
	# shellcheck disable=SC2086 # the words of args are the arguments
	run validate $args
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ]; then
		ok "validate $args: exit 2, one line"
	else
		nok "validate $args" "exit $rc (want 2, one line on stderr)"
	fi
done
# --settings: keys a point's plan leaves out, replacing or adding; the same numbers as the amended
# plan given to estimate; each bad line refused naming the file and the line
printf '# comment\n\nfx-gbs64\trecompute=full,kernels=eager\tmade up for this test\n' >"$T/set.tsv"
run validate --points "$FIX" --settings "$T/set.tsv" --json
awk "$FLATTEN" "$T/out" >"$T/out.flat" 2>/dev/null
amended=$(field ".rows[0].plan")
got=$(field ".rows[0].predicted_s")
untouched=$(field ".rows[1].settings")
run estimate --model "$T/l7.json" --cluster "$T/h100.json" --gpus 8 --json \
	--plan tp=1,pp=1,dp=8,mbs=1,gbs=64,zero=1,recompute=full,kernels=eager
awk "$FLATTEN" "$T/out" >"$T/out.flat"
want=$(field ".iteration_time_s")
if [ "$amended" = '"tp=1,pp=1,dp=8,mbs=1,gbs=64,zero=1,recompute=full,kernels=eager"' ] && [ -n "$want" ] &&
	[ "$got" = "$want" ] && [ "$untouched" = null ]; then
	ok "validate --settings: the key replaced, the key added, the prediction the amended plan's"
else
	nok "validate --settings" "plan $amended, predicted $got (estimate $want), other row's settings $untouched"
fi
run validate --points "$FIX" --settings "$T/set.tsv"
if [ $rc -eq 0 ] && grep -q "^settings: $T/set.tsv amended 1 point' plans" "$T/out"; then
	ok "validate --settings: the text report names the file and the points it amended"
else
	nok "validate --settings text" "exit $rc"
fi
i=0
for line in 'fx-gbs64	recompute=full' 'fx-gbs64	recompute=full	' 'no-such	recompute=full	src' \
	'fx-gbs64	recompute=fast	src' 'fx-gbs64	tp=1	a	b'; do
	i=$((i + 1))
	printf '# header\n%s\n' "$line" >"$T/bad$i.tsv"
	run validate --points "$FIX" --settings "$T/bad$i.tsv"
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "bad$i.tsv:2: " "$T/err"; then
		ok "validate --settings, bad line $i: exit 2, one line naming the file and line 2"
	else
		nok "validate --settings, bad line $i" "exit $rc: $(cat "$T/err")"
	fi
done
printf 'fx-gbs64\trecompute=full\ts\nfx-gbs64\tzero=2\ts\n' >"$T/twice.tsv"
run validate --points "$FIX" --settings "$T/twice.tsv"
if [ $rc -eq 2 ] && grep -q "twice.tsv:2: key 'id': the point is amended twice" "$T/err"; then
	ok "validate --settings: a point amended twice is refused at its second line"
else
	nok "validate --settings twice" "exit $rc: $(cat "$T/err")"
fi

run validate --help
if [ $rc -eq 0 ] && grep -q '^usage: strata validate --points FILE' "$T/out"; then
	ok "validate --help"
else
	nok "validate --help" "exit $rc"
fi

finish_tests
