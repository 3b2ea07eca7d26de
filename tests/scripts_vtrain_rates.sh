#!/bin/sh
# scripts/vtrain_rates.sh (issue 17's diagnosis of vtrain_multi): each row's achieved and
# bubble-free TFLOP/s per GPU against values computed apart from it (Python, Narayanan et al.
# SC'21 eq. 3 with V = 50257; by hand for the 18.4B row: 3.248e17 FLOP / 256 GPUs / 10.4533 s =
# 121.4 TFLOP/s, pp = 1 so no bubble), the residuals join, Kendall tau-b and its family-level ceiling
# (by hand, below), and bad input (exit 2, one line).
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. POSIX sh.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=tests/lib.sh
. "$SRCDIR/tests/lib.sh"
start_tests vtrain-rates
rates="$SRCDIR/scripts/vtrain_rates.sh"
hdr='Parameters (billion),# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,'
hdr="${hdr}tensor parallelism,data parallelism,pipeline parallelism,iteration time (ms)"
# three rows of vTrain's data/ground_truth_multi.csv (lines 2-4 here)
cat >"$T/m.csv" <<CSV
$hdr
39.1,512,1536,3,8192,64,48,2048,1,32,16,19991
175,512,1536,2,12288,96,96,2048,2,8,32,57411.2
18.4,256,1024,2,6144,48,40,2048,8,32,1,10453.3
CSV
# run ROWS-FILE [RESIDUALS]: lib.sh's run (and so its bad) on the script instead of strata
run() {
	cmd="scripts/vtrain_rates.sh $*"
	sh "$rates" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
# row SIZE TP: the row of that size and tp (the first one)
row() { awk -v s="$1" -v t="$2" '$1 == s && $2 == t { print; exit }' "$T/out"; }

run "$T/m.csv"
for want in "39.1B 1 16 32 3 16 19.991 99.8 193.3" "175B 2 32 8 2 96 57.411 153.5 203.0" \
	"18.4B 8 1 32 2 16 10.453 121.4 121.4"; do
	# shellcheck disable=SC2086 # the words of $want are the fields
	set -- $want
	got=$(row "$1" "$2" | awk '{ $1 = $1; print }')
	if [ "$rc" -eq 0 ] && [ "$got" = "$want" ]; then
		ok "$1 tp=$2: $got"
	else
		nok "$1 tp=$2" "got '$got', want '$want'"
	fi
done
# the summary: one line per (size, tp), here with one row each
n=$(awk '/^size +tp +rows/ { s = 1; next } s && NF { n++ } END { print n + 0 }' "$T/out")
if [ "$n" -eq 3 ]; then ok "summary: 3 (size, tp) lines"; else nok "summary" "$n lines, want 3"; fi

# the residuals join: predicted time, error and set per row; the geometric mean of measured/predicted
cat >"$T/r.csv" <<CSV
line,set,group,measured_s,predicted_s,error_pct
2,held_out,"39.1B",19.991,19.722,-1.3456
3,fit,"175B",57.4112,57.277,-0.2337
4,held_out,"18.4B",10.4533,10.862,3.9098
CSV
run "$T/m.csv" "$T/r.csv"
got=$(row 175B 2 | awk '{ print $10, $11, $12 }')
if [ "$rc" -eq 0 ] && [ "$got" = "57.277 -0.2 fit" ]; then ok "joined: $got"; else nok "joined" "got '$got'"; fi
got=$(awk '/^39.1B +1 +1 / { print $NF }' "$T/out")
if [ "$got" = "1.01" ]; then ok "summary ratio 19.991/19.722 = $got"; else nok "summary ratio" "got '$got'"; fi

# tau-b within a size and its ceiling, on four rows of two families (by hand: measured A < B < D < C,
# predicted C < A < B < D: 3 concordant, 3 discordant pairs, 0; each family moved by its geometric mean
# (x 0.970 and x 1.400): A' 14.727 < B' 14.737 < C' 19.600 < D' 21.294, only C-D discordant, 4/6)
cat >"$T/f.csv" <<CSV
$hdr
39.1,512,1536,2,8192,64,48,2048,8,32,2,14614
39.1,512,1536,3,8192,64,48,2048,8,32,2,14850.4
39.1,512,1536,2,8192,64,48,2048,2,32,8,21890.4
39.1,512,1536,3,8192,64,48,2048,2,32,8,19067.2
CSV
cat >"$T/fr.csv" <<CSV
line,set,group,measured_s,predicted_s,error_pct
2,held_out,"39.1B",14.614,15.181,3.9
3,fit,"39.1B",14.8504,15.191,2.3
4,held_out,"39.1B",21.8904,13.998,-36.1
5,held_out,"39.1B",19.0672,15.208,-20.2
CSV
run "$T/f.csv" "$T/fr.csv"
got=$(awk '/^size +rows +tau-b/ { s = 1; next } s && NF { print $1, $2, $3, $4 }' "$T/out")
if [ "$rc" -eq 0 ] && [ "$got" = "39.1B 4 0.000 0.667" ]; then ok "tau-b and ceiling: $got"
else nok "tau-b" "got '$got'"; fi

# bad input: one line naming the file (and line), exit 2, nothing on stdout
printf '%s\n39.1,512,1536,3\n' "$hdr" >"$T/short.csv"
bad "a short row" "short.csv:2" "$T/short.csv"
printf '%s\n39.1,512,1536,3,8192,64,48,2048,2,32,16,19991\n' "$hdr" >"$T/gpus.csv"
bad "tp x dp x pp is not the GPU count" "gpus.csv:2" "$T/gpus.csv"
printf '%s\n39.1,512,1536,3,8192,64,48,2048,1,32,16,0\n' "$hdr" >"$T/zero.csv"
bad "a time of zero" "zero.csv:2" "$T/zero.csv"
head -3 "$T/r.csv" >"$T/r2.csv"
bad "a row without its residual" "m.csv:4" "$T/m.csv" "$T/r2.csv"
printf 'line,set\nx,y\n' >"$T/r3.csv"
bad "not a residuals file" "r3.csv:2" "$T/m.csv" "$T/r3.csv"
bad "no such file" "$T/none.csv" "$T/none.csv"

# the whole of ../shared/validation's vtrain_multi.csv: 109 rows, where it is present
if [ -r "${VALIDATION:-}/vtrain_multi.csv" ]; then
	run "$VALIDATION/vtrain_multi.csv"
	n=$(awk 'NR > 1 && NF == 9' "$T/out" | wc -l)
	if [ "$rc" -eq 0 ] && [ "$n" -eq 109 ]; then ok "vtrain_multi.csv: 109 rows"; else nok "vtrain_multi.csv" "$n rows"; fi
fi
finish_tests
