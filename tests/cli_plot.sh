#!/bin/sh
# shellcheck disable=SC2016,SC2012,SC2317 # awk programs in single quotes; ls of our own files; png/svg called as $ext
# Golden CLI test: `strata plot`.
#   - every kind renders a non-empty PNG (\211PNG magic) and SVG ("<svg") from the fixtures in
#     tests/data/plot/, with IMAGE-stem.gp and IMAGE-stem.dat beside the image and nothing else left
#     behind (the output folder has a space in its name); names like overlap_grad_reduce=1 reach
#     the SVG as written (no enhanced-text mangling);
#   - the .dat holds the numbers the text commands print: iteration times of `strata plan --json`
#     (and its table), the breakdown and per-stage memory of `strata estimate --json`;
#   - timeline --top 2 says "showing 2 of 4 rows"; a gzip-compressed trace plots as the plain one;
#   - STRATA_GNUPLOT=/nonexistent: exit 2, one line, the .gp and .dat written, no image;
#     a gnuplot that fails: exit 2 with its first error line;
#   - unknown kind, bad extension, missing or wrong input: exit 2, one line naming the problem.
# The rendering checks are skipped (exit 77 after the other checks pass) only when strata finds no
# gnuplot. Environment (set by automake): STRATA, SRCDIR. POSIX sh only.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-plot
D=$SRCDIR/tests/data/plot
O="$T/my plots"
mkdir "$O"

# flat FILE: flatten the JSON in FILE into FILE.flat
flat() { awk "$FLATTEN" "$1" >"$1.flat" 2>"$T/flat.err"; }
# png FILE / svg FILE: the file is a non-empty PNG / SVG
png() { [ -s "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '211PNG' ]; }
svg() { [ -s "$1" ] && head -c 4096 "$1" | grep -q '<svg'; }
# same_numbers A B: two files of one number a line, equal as numbers, the same count, not empty
same_numbers() {
	[ -s "$1" ] && [ "$(nlines "$1")" -eq "$(nlines "$2")" ] &&
		paste "$1" "$2" | awk '$1 + 0 != $2 + 0 { bad = 1 } END { exit bad }'
}

echo "# strata: $STRATA"

# ------------------------------------------------------------------ is there a gnuplot?
run plot memory --input "$D/estimate.json" --out "$O/probe.png"
have_gnuplot=1
if [ $rc -eq 2 ] && grep -q '^strata plot: gnuplot not found' "$T/err"; then
	have_gnuplot=0
	echo "note - strata finds no gnuplot: the rendering checks are skipped"
fi
rm -f "$O"/probe.*

# ------------------------------------------------------------------ every kind, PNG and SVG
if [ $have_gnuplot -eq 1 ]; then
	for spec in strategies:plan.json breakdown:plan.json breakdown:estimate.json memory:estimate.json \
		timeline:trace.json timeline:trace_array.json scaling:compare.json hardware:compare.json hardware:compare_energy.json \
		accuracy:accuracy.csv; do
		kind=${spec%%:*}
		in=${spec#*:}
		stem=$kind-${in%.*}
		for ext in png svg; do
			rm -rf "$O" && mkdir "$O"
			run plot "$kind" --input "$D/$in" --out "$O/$stem.$ext"
			left=$(ls -A "$O" | tr '\n' ' ')
			if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && $ext "$O/$stem.$ext" && [ -s "$O/$stem.gp" ] &&
				[ -s "$O/$stem.dat" ] && [ "$left" = "$stem.dat $stem.gp $stem.$ext " ]; then
				ok "plot $kind from $in: a $ext ($(wc -c <"$O/$stem.$ext" | tr -d ' ') bytes), $stem.gp and $stem.dat beside it, nothing else"
			else
				nok "plot $kind --input $in --out $stem.$ext" "exit $rc; expected 0, a $ext, .gp and .dat and nothing else; folder: $left"
			fi
		done
		if [ "$kind" = strategies ]; then cp "$O/$stem.svg" "$T/strategies.svg"; fi
		if [ "$kind" = timeline ] && [ "$in" = trace.json ]; then cp "$O/$stem.svg" "$T/timeline.svg"; fi
	done
	# noenhanced: with enhanced text, "_g" would start a subscript and split the name into pieces
	if grep -q 'overlap_grad_reduce=1' "$T/strategies.svg" && grep -q 'rank 0 / compute' "$T/timeline.svg"; then
		ok "names reach the SVG as written (overlap_grad_reduce=1, rank 0 / compute)"
	else
		nok "noenhanced text" "strategies.svg lacks 'overlap_grad_reduce=1' or timeline.svg lacks 'rank 0 / compute'"
	fi
	# the script stands alone: rerun from another folder, it finds its .dat and writes its image
	rm -rf "$O" && mkdir "$O"
	run plot accuracy --input "$D/accuracy.csv" --out "$O/acc.png"
	rm -f "$O/acc.png"
	if ! command -v gnuplot >/dev/null 2>&1; then
		echo "note - no gnuplot on PATH: the standalone script is not rerun"
	elif (cd "$T" && gnuplot "my plots/acc.gp" >/dev/null 2>&1) && png "$O/acc.png"; then
		ok "gnuplot 'my plots/acc.gp' from another folder redraws acc.png beside the script"
	else
		nok "standalone .gp" "gnuplot 'my plots/acc.gp' run from $T did not write $O/acc.png"
	fi
fi

# ------------------------------------------------------------------ the .dat holds what the text commands print
SMALL="--model llama2-7b --cluster dgx-a100-80g --gpus 16 --gbs 64"
# shellcheck disable=SC2086 # fixed argument list
"$STRATA" plan $SMALL --top 5 --json >"$T/plan.json" 2>/dev/null
# shellcheck disable=SC2086
"$STRATA" plan $SMALL --top 5 >"$T/plan.txt" 2>/dev/null
"$STRATA" estimate --model gpt3-175b --cluster dgx-a100-80g --gpus 64 --plan tp=8,pp=8,gbs=64 --json \
	>"$T/est.json" 2>/dev/null
if flat "$T/plan.json" && flat "$T/est.json"; then
	rm -rf "$O" && mkdir "$O"
	export STRATA_GNUPLOT=/nonexistent # the .dat is written either way; no need to draw here
	run plot strategies --input "$T/plan.json" --out "$O/s.png"
	awk '$1 ~ /^\.plans\[[0-9]+\]\.iteration_time_s$/ { print $2 }' "$T/plan.json.flat" >"$T/want"
	awk '!/^#/ && NF { print $3 }' "$O/s.dat" >"$T/got"
	if same_numbers "$T/got" "$T/want" && [ "$(nlines "$T/got")" -eq 5 ]; then
		ok "strategies .dat: the 5 iteration times of plan --json ($(tr '\n' ' ' <"$T/got"))"
	else
		nok "strategies .dat vs plan --json" ".dat: $(tr '\n' ' ' <"$T/got"); JSON: $(tr '\n' ' ' <"$T/want")"
	fi
	awk '$1 == "rank" { for (i = 1; i <= NF; i++) if ($i == "time_s") c = i; r = 1; next }
		r && /^ *[0-9]+ / { print $c; next } r { r = 0 }' "$T/plan.txt" >"$T/want"
	awk '{ printf "%.3f\n", $1 }' "$T/got" >"$T/got3"
	if [ -s "$T/want" ] && cmp -s "$T/got3" "$T/want"; then
		ok "  ... and, to 3 decimals, the time_s column of the plan table"
	else
		nok "strategies .dat vs the plan table" ".dat: $(tr '\n' ' ' <"$T/got3"); table: $(tr '\n' ' ' <"$T/want")"
	fi
	awk '$1 ~ /^\.plans\[[0-9]+\]\.memory_peak_gib$/ { print $2 }' "$T/plan.json.flat" >"$T/want"
	awk '!/^#/ && NF { print $5 }' "$O/s.dat" >"$T/got"
	if same_numbers "$T/got" "$T/want"; then ok "  ... and the peak memory (GiB)"; else nok "strategies .dat memory" ".dat: $(tr '\n' ' ' <"$T/got"); JSON: $(tr '\n' ' ' <"$T/want")"; fi

	run plot breakdown --input "$T/est.json" --out "$O/b.png"
	for k in compute recompute tp_comm cp_comm ep_comm pp_comm bubble dp_comm optimizer offload; do
		awk -v p=".breakdown_s.$k" '$1 == p { print $2 }' "$T/est.json.flat"
	done >"$T/want"
	awk '!/^#/ && NF { for (i = 3; i <= 12; i++) print $i }' "$O/b.dat" >"$T/got"
	if same_numbers "$T/got" "$T/want"; then
		ok "breakdown .dat: the 10 components of estimate --json breakdown_s"
	else
		nok "breakdown .dat vs estimate --json" ".dat: $(tr '\n' ' ' <"$T/got"); JSON: $(tr '\n' ' ' <"$T/want")"
	fi

	run plot memory --input "$T/est.json" --out "$O/m.png"
	awk '$1 ~ /^\.memory_gib\[[0-9]+\]\.(weights|gradients|optimizer|activations|other|total)$/ { print $2 }' \
		"$T/est.json.flat" >"$T/want"
	awk '/^#/ { next } !NF { blank++; next } blank < 2 { for (i = 2; i <= 7; i++) print $i }' "$O/m.dat" >"$T/got"
	cap=$(awk '$1 == ".gpu_memory_gib" { print $2 }' "$T/est.json.flat")
	dcap=$(awk '$1 == "#" && $2 == "gpu_memory_gib" { print $3 }' "$O/m.dat")
	if same_numbers "$T/got" "$T/want" && [ -n "$cap" ] && awk -v a="$cap" -v b="$dcap" 'BEGIN { exit !(a + 0 == b + 0) }'; then
		ok "memory .dat: every stage's parts and total of estimate --json memory_gib, capacity $cap GiB"
	else
		nok "memory .dat vs estimate --json" "$(nlines "$T/got") numbers in the .dat, $(nlines "$T/want") in the JSON, capacity $cap"
	fi
	unset STRATA_GNUPLOT
else
	nok "plan/estimate --json" "could not produce the JSON to compare the .dat with: $(cat "$T/flat.err")"
fi

# strata compare, once it exists: its --json feeds scaling and hardware
# (values compared as sorted lists: the charts group by cluster, the JSON ranks by time)
if "$STRATA" compare --model llama2-7b --clusters dgx-a100-80g,dgx-h100 --gpus 16,32 --gbs 64 \
	--price-per-gpu-hour 1.8,2.9 --json >"$T/cmp.json" 2>/dev/null && flat "$T/cmp.json"; then
	rm -rf "$O" && mkdir "$O"
	STRATA_GNUPLOT=/nonexistent "$STRATA" plot scaling --input "$T/cmp.json" --out "$O/c.png" >/dev/null 2>&1
	STRATA_GNUPLOT=/nonexistent "$STRATA" plot hardware --input "$T/cmp.json" --out "$O/h.png" >/dev/null 2>&1
	for k in tokens_per_s:c:2 mfu:c:3 time_to_train_days:h:4 cost_to_train:h:5; do
		key=${k%%:*}
		f=${k#*:}
		col=${f#*:}
		f=${f%%:*}
		awk -v k="$key" '$1 ~ "^\\.results\\[[0-9]+\\]\\." k "$" && $2 != "null" { print $2 }' "$T/cmp.json.flat" |
			sort -g >"$T/want"
		awk -v c="$col" '!/^#/ && NF && $c != "NaN" { print $c }' "$O/$f.dat" | sort -g >"$T/got"
		if same_numbers "$T/got" "$T/want"; then
			ok "$([ "$f" = c ] && echo scaling || echo hardware) .dat: the $key of compare --json ($(nlines "$T/got") values)"
		else
			nok "$f.dat vs compare --json $key" ".dat: $(tr '\n' ' ' <"$T/got"); JSON: $(tr '\n' ' ' <"$T/want")"
		fi
	done
else
	echo "note - strata compare --json is not available: scaling/hardware checked on the fixture only"
fi

# ------------------------------------------------------------------ timeline --top
rm -rf "$O" && mkdir "$O"
STRATA_GNUPLOT=/nonexistent "$STRATA" plot timeline --input "$D/trace.json" --out "$O/t.png" --top 2 >/dev/null 2>&1
if grep -q 'showing 2 of 4 rows' "$O/t.gp" && grep -q '^# rows 4, shown 2;' "$O/t.dat"; then
	ok "timeline --top 2: \"showing 2 of 4 rows\" above the chart, the summary in the .dat"
else
	nok "timeline --top 2" "no 'showing 2 of 4 rows' in t.gp or no '# rows 4, shown 2' in t.dat"
fi

# ------------------------------------------------------------------ timeline of a gzip trace
# traces/reader.c reads Chrome traces plain or gzip-compressed (as strata calibrate reads Kineto's):
# the same data either way
gzip -c "$D/trace.json" >"$T/trace.json.gz"
rm -rf "$O" && mkdir "$O"
STRATA_GNUPLOT=/nonexistent "$STRATA" plot timeline --input "$D/trace.json" --out "$O/plain.png" >/dev/null 2>&1
STRATA_GNUPLOT=/nonexistent "$STRATA" plot timeline --input "$T/trace.json.gz" --out "$O/gz.png" >/dev/null 2>&1
# (line 1 names the input file)
if [ -s "$O/plain.dat" ] && [ "$(tail -n +2 "$O/plain.dat")" = "$(tail -n +2 "$O/gz.dat")" ]; then
	ok "timeline of a gzip-compressed trace: the same data as of the plain one"
else
	nok "timeline of a gzip trace" "gz.dat missing or different from plain.dat"
fi

# the time axis gets at most five steps of 1, 2 or 5 x 10^k (gnuplot's default put ten labels over
# each other at the gallery's size), in seconds once the trace spans a second
step=$(awk '$1 == "set" && $2 == "xtics" && $3 + 0 > 0 { print $3 }' "$O/plain.gp")
span=$(awk 'match($0, /[0-9.]+ ms/) { print substr($0, RSTART, RLENGTH - 3); exit }' "$O/plain.gp")
unit=$(awk -F'"' '/^set xlabel/ { print $2 }' "$O/plain.gp")
if [ -n "$step" ] && [ -n "$span" ] && awk -v st="$step" -v sp="$span" -v u="$unit" 'BEGIN {
	per = (u == "time (s)") ? 1000 : 1
	if ((sp >= 1000) != (per == 1000)) exit 1
	n = sp / per / st; m = st / 10 ^ int(log(st) / log(10) + (st < 1 ? -1 : 0) + 1e-9)
	exit !(n <= 5 && n > 1 && (m == 1 || m == 2 || m == 5))
}'; then
	ok "timeline: $unit, ticks every $step over $span ms"
else
	nok "timeline ticks" "set xtics '$step', span '$span' ms, xlabel '$unit'"
fi

# ------------------------------------------------------------------ without gnuplot, a failing gnuplot
rm -rf "$O" && mkdir "$O"
cmd="STRATA_GNUPLOT=/nonexistent strata plot memory --input estimate.json --out 'my plots/m.png'"
STRATA_GNUPLOT=/nonexistent "$STRATA" plot memory --input "$D/estimate.json" --out "$O/m.png" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] &&
	grep -q "gnuplot not found: wrote $O/m.gp and $O/m.dat; install gnuplot" "$T/err" &&
	[ -s "$O/m.gp" ] && [ -s "$O/m.dat" ] && [ "$(ls -A "$O" | tr '\n' ' ')" = "m.dat m.gp " ]; then
	ok "without gnuplot: exit 2, one line saying so, m.gp and m.dat written, no image"
else
	nok "without gnuplot" "exit $rc; expected 2, one line 'gnuplot not found: wrote ...', m.gp, m.dat and no image; folder: $(ls -A "$O" | tr '\n' ' ')"
fi
cat >"$T/fake-gnuplot" <<'EOF'
#!/bin/sh
echo '"m.gp" line 7: warning: something harmless' >&2
echo '"m.gp" line 9: undefined variable: nosuch' >&2
exit 1
EOF
chmod +x "$T/fake-gnuplot"
rm -rf "$O" && mkdir "$O"
cmd="STRATA_GNUPLOT=fake-gnuplot strata plot memory --input estimate.json --out 'my plots/m.png'"
STRATA_GNUPLOT=$T/fake-gnuplot "$STRATA" plot memory --input "$D/estimate.json" --out "$O/m.png" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q 'line 9: undefined variable: nosuch' "$T/err" &&
	[ "$(ls -A "$O" | tr '\n' ' ')" = "m.dat m.gp " ]; then
	ok "a failing gnuplot: exit 2 with its first error line, no image: $(cat "$T/err")"
else
	nok "failing gnuplot" "exit $rc; expected 2 and one line with 'line 9: undefined variable: nosuch'; folder: $(ls -A "$O" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ usage and input errors
# bad DESCRIPTION NEEDLE ARGS...: exit 2, nothing on stdout, one line on stderr containing NEEDLE
bad() {
	what=$1
	needle=$2
	shift 2
	run "$@"
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -Fq -e "$needle" "$T/err"; then
		ok "$what: exit 2, one line: $(cat "$T/err")"
	else
		nok "$what" "exit $rc; expected 2, nothing on stdout and one line with '$needle'"
	fi
}
rm -rf "$O" && mkdir "$O"
bad "unknown kind" "unknown plot 'pie'" plot pie --input "$D/plan.json" --out "$O/x.png"
bad "no kind" "which plot?" plot --input "$D/plan.json" --out "$O/x.png"
bad "bad extension" "must end in .png, .svg or .pdf" plot strategies --input "$D/plan.json" --out "$O/x.jpg"
bad "no extension" "must end in .png, .svg or .pdf" plot strategies --input "$D/plan.json" --out "$O/x"
bad "missing --input" "--input and --out are required" plot strategies --out "$O/x.png"
bad "missing input file" "$T/nope.json: cannot open" plot strategies --input "$T/nope.json" --out "$O/x.png"
bad "wrong input for the kind" "key 'memory_gib': missing (memory reads the output of strata estimate --json)" \
	plot memory --input "$D/plan.json" --out "$O/x.png"
head -c 100 "$T/trace.json.gz" >"$T/cut.json.gz"
bad "truncated gzip trace" "$T/cut.json.gz: the gzip stream is truncated" plot timeline --input "$T/cut.json.gz" --out "$O/x.png"
bad "CSV without a column" "key 'predicted'" plot accuracy --input "$D/invalid/csv_no_predicted.csv" --out "$O/x.png"
bad "--top 0" "option '--top'" plot timeline --input "$D/trace.json" --out "$O/x.png" --top 0
if [ -z "$(ls -A "$O")" ]; then ok "the refused runs wrote nothing"; else nok "refused runs" "they left: $(ls -A "$O" | tr '\n' ' ')"; fi

if [ $have_gnuplot -eq 0 ] && [ $nfail -eq 0 ]; then
	echo "# $npass passed; rendering skipped: no gnuplot"
	exit 77
fi
finish_tests
