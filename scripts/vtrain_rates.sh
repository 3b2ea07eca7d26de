#!/bin/sh
# scripts/vtrain_rates.sh VTRAIN_MULTI.csv [RESIDUALS.csv]: what each multi-node vTrain run achieved
# per GPU, with the pipeline bubble taken out, to judge whether the measured times follow from the
# plan at all (issue 17: vtrain_multi's ranking target). No model of strata's is involved.
#
# For each row (Bang et al., MICRO'24, github.com/VIA-Research/vTrain data/ground_truth_multi.csv):
#   flops     = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)): the model FLOPs of one iteration with full
#               recompute (Narayanan et al., SC'21, eq. 3), V = 50257 (vTrain's GPT vocabulary);
#   tflops    = flops / (GPUs x measured time): what a GPU achieved over the iteration;
#   busy      = flops / (GPUs x measured time x m / (m + pp - 1)), m = B / (dp x mbs): with equal
#               stages 1F1B takes m + pp - 1 micro-batch slots of which m do work, so this is the
#               rate while a GPU is not waiting in the bubble. Everything else (tp, pp and dp
#               communication, the optimizer, host time) is still inside it.
# For one model, the busy rate can only follow the per-GPU work's shape (tp, mbs) and the small
# tp/dp/p2p shares; it cannot depend on pp or dp beyond those. The summary gives its range per
# (model size, tp): a range far wider than the shapes explain, or one tp below both its neighbours,
# is a property of the runs that no function of the plan (strata's or vTrain's) reproduces.
# RESIDUALS.csv (`strata calibrate --runs ... --residuals`, on scripts/vtrain_runs.sh's multi.csv,
# whose line N is line N of VTRAIN_MULTI.csv) adds each row's prediction, its error and whether it
# was fitted or held out, and per model size Kendall's tau-b between measured and predicted times
# beside a ceiling: the tau-b the same predictions reach when each (tp, pp, dp) family of rows is
# moved by its own geometric-mean measured/predicted, i.e. were every family's level right and only
# the order of its micro-batch sizes left to the model. A diagnostic, fitted to the judged rows on
# purpose (a bound, never a prediction). Bad input: one line naming the file and line, exit 2. POSIX sh and awk.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: scripts/vtrain_rates.sh VTRAIN_MULTI.csv [RESIDUALS.csv]" >&2
	exit 2
fi
multi=$1 res=${2:-}
for f in "$multi" $res; do
	[ -r "$f" ] || { echo "scripts/vtrain_rates.sh: $f: cannot read" >&2; exit 2; }
done
out=$(tr -d '\r' <"$multi" | awk -F, -v resf="$res" -v mname="$multi" '
function bad(file, line, what) {
	printf "scripts/vtrain_rates.sh: %s:%d: %s\n", file, line, what >"/dev/stderr"
	failed = 1
	exit 2
}
BEGIN {
	if (resf != "") {
		n = 0
		while ((getline l <resf) > 0) {
			n++
			if (n == 1) continue
			k = split(l, f, ",")
			if (k != 6 || f[1] !~ /^[0-9]+$/ || f[5] + 0 <= 0)
				bad(resf, n, "not a residuals row (line,set,group,measured_s,predicted_s,error_pct)")
			pred[f[1]] = f[5]; err[f[1]] = f[6]; set[f[1]] = f[2]
		}
		close(resf)
	}
}
NR == 1 { next }
{
	# Parameters (billion),# GPUs,global batch,micro batch,hidden,heads,layers,seq,tp,dp,pp,iteration time (ms)
	if (NF != 12) bad(mname, NR, "expected 12 fields")
	for (i = 2; i <= 12; i++) if ($i + 0 <= 0) bad(mname, NR, "field " i " is not positive")
	gpus = $2; B = $3; mbs = $4; h = $5; l = $7; s = $8; tp = $9; dp = $10; pp = $11; t_s = $12 / 1000
	if (tp * dp * pp != gpus || B % (dp * mbs) != 0)
		bad(mname, NR, "tp x dp x pp is not the GPU count, or the batch does not split into micro-batches")
	m = B / (dp * mbs)
	flops = 96 * B * s * l * h * h * (1 + s / (6 * h) + 50257 / (16 * l * h))
	tf = flops / (gpus * t_s) / 1e12
	busy = tf * (m + pp - 1) / m
	line = sprintf("%-6s %3d %3d %3d %4d %4d %10.3f %7.1f %7.1f", $1 "B", tp, pp, dp, mbs, m, t_s, tf, busy)
	if (resf != "") {
		if (!(NR in pred)) bad(mname, NR, "no residual for this row in " resf)
		line = line sprintf(" %10.3f %+7.1f  %s", pred[NR], err[NR], set[NR])
		lr = log(t_s / pred[NR])
		nr++; rsize[nr] = $1 "B"; rfam[nr] = $1 "B " tp " " pp " " dp; rmeas[nr] = t_s; rpred[nr] = pred[NR]
		famlr[rfam[nr]] += lr; famn[rfam[nr]]++
	}
	print "r " line
	key = $1 "B " tp
	if (!(key in cnt)) { order[++nk] = key; ksize[key] = $1 "B"; ktp[key] = tp; lo[key] = busy; hi[key] = busy }
	cnt[key]++
	if (busy < lo[key]) lo[key] = busy
	if (busy > hi[key]) hi[key] = busy
	if (resf != "") sumlr[key] += lr
}
# taub(SIZE, MOVED): Kendall tau-b of measured against predicted times over the rows of SIZE; with
# MOVED, each prediction times its family geometric-mean measured/predicted
function taub(size, moved,   i, j, a, b, c, d, tx, ty, p, q) {
	c = d = tx = ty = 0
	for (i = 1; i <= nr; i++) {
		if (rsize[i] != size) continue
		for (j = i + 1; j <= nr; j++) {
			if (rsize[j] != size) continue
			p = rpred[i]; q = rpred[j]
			if (moved) { p *= exp(famlr[rfam[i]] / famn[rfam[i]]); q *= exp(famlr[rfam[j]] / famn[rfam[j]]) }
			a = rmeas[i] - rmeas[j]; b = p - q
			if (a == 0 && b == 0) continue
			if (a == 0) tx++
			else if (b == 0) ty++
			else if (a * b > 0) c++
			else d++
		}
	}
	return (c + d + tx) * (c + d + ty) > 0 ? (c - d) / sqrt((c + d + tx) * (c + d + ty)) : 0
}
END {
	if (failed) exit 2
	for (i = 1; i <= nk; i++) {
		k = order[i]
		printf "s %-6s %3d %5d  %6.1f .. %6.1f", ksize[k], ktp[k], cnt[k], lo[k], hi[k]
		if (resf != "") printf "   %5.2f", exp(sumlr[k] / cnt[k])
		printf "\n"
	}
	for (i = 1; i <= nr; i++) if (!(rsize[i] in sizerows)) { sizerows[rsize[i]] = 0; sizes[++ns] = rsize[i] }
	for (i = 1; i <= nr; i++) sizerows[rsize[i]]++
	for (i = 1; i <= ns; i++)
		if (sizerows[sizes[i]] > 1)
			printf "t %-6s %5d %8.3f %8.3f\n", sizes[i], sizerows[sizes[i]], taub(sizes[i], 0), taub(sizes[i], 1)
}') || exit 2
head="size    tp  pp  dp  mbs    m measured_s TFLOP/s    busy"
[ -n "$res" ] && head="$head predicted_s  error%  set"
echo "$head"
# rows by size, tp, pp, dp and micro-batch size; then the ranges per (size, tp)
printf '%s\n' "$out" | sed -n 's/^r //p' | sort -k1,1n -k2,2n -k3,3n -k4,4n -k5,5n
echo
echo "size    tp  rows  busy TFLOP/s per GPU$([ -n "$res" ] && echo "   measured/predicted (geometric mean)")"
printf '%s\n' "$out" | sed -n 's/^s //p' | sort -k1,1n -k2,2n
if [ -n "$res" ]; then
	echo
	echo "size   rows    tau-b  ceiling: each (tp, pp, dp) family's level right (all rows, fitted and held out)"
	printf '%s\n' "$out" | sed -n 's/^t //p' | sort -k1,1n
fi
