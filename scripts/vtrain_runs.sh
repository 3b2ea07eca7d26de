#!/bin/sh
# scripts/vtrain_runs.sh VALIDATION_DIR OUT_DIR: vTrain's ground truth (vtrain_single.csv,
# vtrain_multi.csv) as runs files for `strata calibrate --runs`: OUT_DIR/single.csv and
# OUT_DIR/multi.csv (model,gpus,plan,group,measured_s: the time last, where a script can swap it) and
# the model files they name, in
# OUT_DIR/models. Models and plans are built from each row exactly as scripts/validate.sh builds
# them (GPT: gelu, layernorm, learned positions, tied embeddings, bias, dropout; ffn 4h, vocab
# 50257; fp16, full recompute, 1F1B, unfused attention, fp16 gradients), plus pp_partition=1: the rows
# ran on Megatron-DeepSpeed's pipeline engine, which sends 1/tp of each pipeline message per tp rank
# and gathers the rest over tp (DeepSpeed's pipe_partitioned/grad_partitioned defaults; on
# vtrain_multi, fitted on seed 1's 20 %, held-out MAE 10.0 -> 9.0 %). Groups: vtrain_single's
# rows of one model, GPU count and global batch (validate.sh's rank groups); vtrain_multi's model
# size. POSIX sh and awk.
set -eu
[ $# -eq 2 ] || { echo "usage: scripts/vtrain_runs.sh VALIDATION_DIR OUT_DIR" >&2; exit 2; }
val=$1 out=$2
mkdir -p "$out/models"
# one awk over both files (BOMs and CRs gone): a model file per distinct shape, then the runs
tr -d '\r' <"$val/vtrain_single.csv" >"$out/.single"
tr -d '\r' <"$val/vtrain_multi.csv" >"$out/.multi"
awk -F, -v out="$out" '
function model(l, h, a, s,   f) {
	f = "models/l" l "-h" h "-a" a "-s" s ".json"
	if (!(f in made)) {
		made[f] = 1
		printf "{ \"name\": \"vtrain-l%s-h%s\", \"layers\": %s, \"hidden\": %s, \"heads\": %s, \"kv_heads\": %s,\n",
			l, h, l, h, a, a >(out "/" f)
		printf "  \"ffn\": %d, \"vocab\": 50257, \"seq_len\": %s,\n", 4 * h, s >(out "/" f)
		printf "  \"activation\": \"gelu\", \"norm\": \"layernorm\", \"position\": \"learned\",\n" >(out "/" f)
		printf "  \"tied_embeddings\": true, \"dropout\": true, \"bias\": true }\n" >(out "/" f)
		close(out "/" f)
	}
	return f
}
function spec(tp, pp, dp, mbs, gbs, s) {
	return "tp=" tp ",pp=" pp ",dp=" dp ",cp=1,mbs=" mbs ",gbs=" gbs ",vp=1,seq=" s ",sp=0,recompute=full,zero=0,pp_partition=1," \
		"dtype=fp16,schedule=1f1b,grad_bytes=2,attention=unfused"
}
BEGIN {
	print "model,gpus,plan,group,measured_s" >(out "/single.csv")
	print "model,gpus,plan,group,measured_s" >(out "/multi.csv")
}
FNR == 1 { next }
FILENAME ~ /\.single$/ && NF >= 11 {
	# GPUs,global batch,micro batch,hidden,heads,layers,seq,tp,dp,pp,iteration time (ms)
	printf "%s,%s,\"%s\",\"l=%s h=%s a=%s s=%s, %s GPUs, gbs=%s\",%.10g\n", model($6, $4, $5, $7), $1,
		spec($8, $10, $9, $3, $2, $7), $6, $4, $5, $7, $1, $2, $11 / 1000 >(out "/single.csv")
}
FILENAME ~ /\.multi$/ && NF >= 12 {
	# Parameters (billion),# GPUs,global batch,micro batch,hidden,heads,layers,seq,tp,dp,pp,iteration time (ms)
	printf "%s,%s,\"%s\",%sB,%.10g\n", model($7, $5, $6, $8), $2, spec($9, $11, $10, $4, $3, $8), $1,
		$12 / 1000 >(out "/multi.csv")
}' "$out/.single" "$out/.multi"
rm -f "$out/.single" "$out/.multi"
