#!/bin/sh
# scripts/validate.sh: compare strata's predicted iteration times with published, measured ones.
#
#   scripts/validate.sh [--strata PATH] [--validation DIR]
#                       [--set sc21|vtrain|vtrain_single|modern|modern_settings|all]
#                       [--csv FILE] [--command estimate|sim]
#
# Data (see DIR/README.md):
#   sc21_table1.csv   Narayanan et al., SC'21, Table 1 (Megatron-LM weak scaling on Selene, DGX A100 80GB).
#                     Absolute test: error of each row, MAE and max |error|.
#   vtrain_multi.csv  vTrain (Bang et al., MICRO'24) ground truth, Megatron-DeepSpeed on A100 clusters.
#                     Ranking test: Kendall's tau-b between measured and predicted per model size.
#   vtrain_single.csv vTrain ground truth of 1,440 runs of 0.4-1.3B models on one node of 2-8 A100.
#                     Ranking test: tau-b per group of rows with the same model, GPUs and global batch
#                     (they differ in tp, pp, dp and micro-batch); mean, median and share >= 0.5.
#   modern_public.json  today's published runs (Megatron-LM and Megatron-Core on H100, torchtitan on
#                     H100 and A100) in strata's own formats: `strata validate --points` reads and runs
#                     it; its SUMMARY and TAU lines come out as the sets modern (all points),
#                     modern-strict and modern-loose, and TAU modern group=G.
#   modern_settings   the same points with the settings their sources state and their plans leave
#                     out (scripts/modern_settings.tsv, `strata validate --settings`: overlap flags,
#                     the attention kernel, torchtitan's op-level AC and eager kernels); sets
#                     modern_settings, modern_settings-strict and -loose.
#
# sc21, vtrain and vtrain_single: every model is built from the row's own columns (no presets). Each
# row runs
#   strata estimate --model ROW.json --cluster C --gpus N --plan SPEC --json
# and is reported as compared, "rejected: <strata's message>" (exit 2, excluded from the statistics),
# "does not fit" (exit 1, excluded) or "error" (anything else, excluded). Output is deterministic.
# Lines starting with "SUMMARY" and "TAU" are for tests/accuracy_*.sh. --csv FILE also writes the
# compared rows as name,measured,predicted,set (seconds) for `strata plot accuracy`.
#
# Defaults: --strata ./strata if it exists, else $STRATA; --validation $VALIDATION, else
# <source root>/../shared/validation; --set all. Exit status: 0 report printed, 2 usage or missing input.
# POSIX sh + awk only.

set -u
LC_ALL=C
export LC_ALL

prog=validate.sh

usage() {
	cat <<'EOF'
usage: scripts/validate.sh [--strata PATH] [--validation DIR]
                          [--set sc21|vtrain|vtrain_single|modern|modern_settings|all] [--csv FILE]
                          [--command estimate|sim]

  --strata PATH     the strata binary (default: ./strata, else $STRATA)
  --validation DIR  folder with sc21_table1.csv, vtrain_multi.csv, vtrain_single.csv and
                    modern_public.json
                    (default: $VALIDATION, else <source root>/../shared/validation)
  --set S           sc21, vtrain, vtrain_single, modern, modern_settings (modern with the settings
                    scripts/modern_settings.tsv names) or all (default all)
  --csv FILE        also write the compared rows as name,measured,predicted,set (seconds)
  --command C       predict with `strata estimate` (analytical, default) or `strata sim`
                    (the discrete-event simulator)
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd) || die "cannot find the script's folder"
srcroot=$(cd "$here/.." && pwd) || die "cannot find the source root"

strata=""
valdir=""
which_set=all
csv_out=""
command=estimate
while [ $# -gt 0 ]; do
	case $1 in
	--strata) [ $# -ge 2 ] || die "--strata needs a value"; strata=$2; shift 2 ;;
	--strata=*) strata=${1#--strata=}; shift ;;
	--validation) [ $# -ge 2 ] || die "--validation needs a value"; valdir=$2; shift 2 ;;
	--validation=*) valdir=${1#--validation=}; shift ;;
	--set) [ $# -ge 2 ] || die "--set needs a value"; which_set=$2; shift 2 ;;
	--set=*) which_set=${1#--set=}; shift ;;
	--command) [ $# -ge 2 ] || die "--command needs a value"; command=$2; shift 2 ;;
	--command=*) command=${1#--command=}; shift ;;
	--csv) [ $# -ge 2 ] || die "--csv needs a value"; csv_out=$2; shift 2 ;;
	--csv=*) csv_out=${1#--csv=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done

case $which_set in
sc21 | vtrain | vtrain_single | modern | modern_settings | all) ;;
*) die "--set must be sc21, vtrain, vtrain_single, modern, modern_settings or all (got '$which_set')" ;;
esac
case $command in
estimate | sim) ;;
*) die "--command must be estimate or sim (got '$command')" ;;
esac

if [ -z "$strata" ]; then
	if [ -x ./strata ] && [ ! -d ./strata ]; then
		strata=./strata
	elif [ -n "${STRATA:-}" ]; then
		strata=$STRATA
	else
		die "no strata binary: build it and run from the build folder, or pass --strata PATH or set STRATA"
	fi
fi
if [ ! -x "$strata" ] || [ -d "$strata" ]; then
	p=$(command -v "$strata" 2>/dev/null) || p=""
	[ -n "$p" ] || die "strata binary '$strata' not found or not executable"
	strata=$p
fi

if [ -z "$valdir" ]; then
	valdir=${VALIDATION:-$srcroot/../shared/validation}
fi
[ -d "$valdir" ] || die "validation data not found at $valdir (pass --validation DIR)"
valdir=$(cd "$valdir" && pwd)

vtrain_cluster=$srcroot/tests/data/validation/vtrain_cluster.json

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-validate.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; exit 130' INT TERM

# isnum VALUE...: all arguments are unsigned integers
isnum() {
	for v in "$@"; do
		case $v in
		'' | *[!0-9]*) return 1 ;;
		esac
	done
	return 0
}

# write_model FILE NAME LAYERS HIDDEN HEADS FFN VOCAB SEQ: a GPT-style strata model JSON
write_model() {
	cat >"$1" <<EOF
{ "name": "$2", "layers": $3, "hidden": $4, "heads": $5, "kv_heads": $5,
  "ffn": $6, "vocab": $7, "seq_len": $8,
  "activation": "gelu", "norm": "layernorm", "position": "learned",
  "tied_embeddings": true, "dropout": true, "bias": true }
EOF
}

# run_est MODEL CLUSTER GPUS SPEC: sets st (ok | rejected | nofit | error), pred (seconds), msg
run_est() {
	"$strata" "$command" --model "$1" --cluster "$2" --gpus "$3" --plan "$4" --json \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	# one awk for the four fields (1,440 rows in the single-node set): the first value of each key
	# in the JSON, the first non-empty line of stderr; printed as pred|peak|fits|msg
	res=$(awk 'function val(v) { v = $0; sub(/^[^:]*:[ ]*/, "", v); sub(/[ ,]*$/, "", v); return v }
	FILENAME == ARGV[1] {
		if (!("p" in f) && /^[ ]*"iteration_time_s"[ ]*:/) f["p"] = val()
		if (!("m" in f) && /^[ ]*"memory_peak_gib"[ ]*:/) f["m"] = sprintf("%.1f", val())
		if (!("f" in f) && /^[ ]*"fits"[ ]*:/) f["f"] = val()
		next
	}
	NF && !("e" in f) { sub(/^strata( [a-z]+)?: /, ""); gsub(/\t/, " "); f["e"] = $0 }
	END { print f["p"] "|" f["m"] "|" f["f"] "|" f["e"] }' "$tmp/out" "$tmp/err")
	IFS='|' read -r pred peak fits msg <<EOF
$res
EOF
	case $rc in
	0)
		if [ "$fits" = false ]; then
			st=nofit
			msg="exit 0 but fits=false, peak ${peak:-?} GiB"
		elif [ -n "$pred" ]; then
			st=ok
		else
			st=error
			msg="no iteration_time_s in strata's output"
		fi
		;;
	1)
		st=nofit
		msg="peak ${peak:-?} GiB${msg:+; $msg}"
		;;
	2)
		st=rejected
		[ -n "$msg" ] || msg="exit 2 without a message"
		;;
	*)
		st=error
		msg="strata exit $rc${msg:+: $msg}"
		;;
	esac
}

# run_vtrain NAME LAYERS HIDDEN HEADS SEQ GPUS TP PP DP MBS GBS: run_est on one vTrain row (multi or
# single node), the model built from the row's columns, the plan from its parallel degrees
run_vtrain() {
	write_model "$tmp/model.json" "$1" "$2" "$3" "$4" $((4 * $3)) 50257 "$5"
	# grad_bytes=2: Megatron-DeepSpeed hands the model and the bare optimizer to
	# deepspeed.initialize, whose fp16 engine keeps the gradients in the fp16
	# param.grad and all-reduces them in fp16 (DeepSpeed runtime/engine.py,
	# communication_data_type; no fp32 main_grad as Megatron-LM's own DDP has)
	spec="tp=$7,pp=$8,dp=$9,cp=1,mbs=${10},gbs=${11},vp=1,seq=$5,sp=0"
	spec="$spec,recompute=full,zero=0,dtype=fp16,schedule=1f1b,grad_bytes=2,attention=unfused,pp_partition=1"
	run_est "$tmp/model.json" "$vtrain_cluster" "$6" "$spec"
}

# awk function taub(n, x, y): Kendall's tau-b between x[1..n] and y[1..n], "nan" when n < 2 or one
# side is all tied; leaves the pair counts in tb_pairs, tb_conc, tb_disc, tb_tx, tb_ty
taub_awk='
function taub(n, x, y,   i, j, sx, sy, den) {
	tb_conc = 0; tb_disc = 0; tb_tx = 0; tb_ty = 0; tb_pairs = n * (n - 1) / 2
	for (i = 1; i < n; i++)
		for (j = i + 1; j <= n; j++) {
			sx = x[i] - x[j]; sx = sx > 0 ? 1 : (sx < 0 ? -1 : 0)
			sy = y[i] - y[j]; sy = sy > 0 ? 1 : (sy < 0 ? -1 : 0)
			if (sx == 0) tb_tx++
			if (sy == 0) tb_ty++
			if (sx * sy > 0) tb_conc++
			else if (sx * sy < 0) tb_disc++
		}
	den = (tb_pairs - tb_tx) * (tb_pairs - tb_ty)
	return n >= 2 && den > 0 ? (tb_conc - tb_disc) / sqrt(den) : "nan"
}'

# csv_rows SET TSV DIVISOR: append the compared rows of TSV (columns: #, size or model, gpus, plan,
# measured, status, predicted_s) to $tmp/acc.csv as name,measured_s,predicted_s,set; the measured
# column is divided by DIVISOR (1000 for milliseconds). Names are quoted (RFC 4180).
csv_rows() {
	[ -n "$csv_out" ] || return 0
	awk -F '\t' -v set="$1" -v div="$3" '$6 == "ok" {
		name = set == "vtrain" ? $2 "B, " $3 " GPUs, " $4 : $2 ", " $3 " GPUs"
		gsub(/"/, "\"\"", name)
		printf "\"%s\",%.10g,%s,%s\n", name, $5 / div, $7, set
	}' "$2" >>"$tmp/acc.csv"
}

# ------------------------------------------------------------------------------------------- SC'21
sc21() {
	csv=$valdir/sc21_table1.csv
	[ -r "$csv" ] || die "cannot read $csv"
	out=$tmp/sc21.tsv
	: >"$out"
	n=0
	tail -n +2 "$csv" | tr -d '\r' | {
		while IFS=, read -r model layers hidden heads ffn vocab seq gpus tp pp dp cp mbs gbs vp sp \
			recompute zero dtype tflops iter notes; do
			[ -n "$model" ] || continue
			n=$((n + 1))
			label="tp=$tp pp=$pp dp=$dp"
			[ "$cp" = 1 ] || label="$label cp=$cp"
			label="$label mbs=$mbs gbs=$gbs vp=$vp"
			[ "$sp" = 0 ] || label="$label sp=$sp"
			[ "$recompute" = full ] || label="$label recompute=$recompute"
			[ "$zero" = 0 ] || label="$label zero=$zero"
			[ "$dtype" = fp16 ] || label="$label $dtype"
			if ! isnum "$layers" "$hidden" "$heads" "$ffn" "$vocab" "$seq" "$gpus" "$tp" "$pp" "$dp" \
				"$cp" "$mbs" "$gbs" "$vp" "$sp" "$zero"; then
				st=error pred="" msg="malformed row in the CSV"
			elif [ $((tp * pp * dp * cp)) -ne "$gpus" ]; then
				st=error pred="" msg="data: tp*pp*dp*cp = $((tp * pp * dp * cp)) != gpus $gpus"
			else
				if [ "$vp" -gt 1 ]; then sched=interleaved; else sched=1f1b; fi
				write_model "$tmp/model.json" "$model" "$layers" "$hidden" "$heads" "$ffn" "$vocab" "$seq"
				spec="tp=$tp,pp=$pp,dp=$dp,cp=$cp,mbs=$mbs,gbs=$gbs,vp=$vp,seq=$seq,sp=$sp"
				spec="$spec,recompute=$recompute,zero=$zero,dtype=$dtype,schedule=$sched,attention=unfused"
				run_est "$tmp/model.json" dgx-a100-80g "$gpus" "$spec"
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$model" "$gpus" "$label" "$iter" \
				"$st" "${pred:--}" "${msg:--}" >>"$out"
		done
	}

	echo "== SC'21 Table 1: Narayanan et al., Megatron-LM weak scaling on Selene (absolute test) =="
	echo "data:    $csv"
	echo "         (Narayanan et al., SC'21, Table 1, with per-row settings from Megatron-LM examples/sc21;"
	echo "         measured = iteration_time_s_derived, from the paper's TFLOP/s per GPU and its eq. 3)"
	echo "strata:  $strata $command --cluster dgx-a100-80g --gpus <row's GPUs>, model JSON built from the"
	echo "         row (GPT: gelu, layernorm, learned positions, tied embeddings, bias, dropout),"
	echo "         plan from the row; schedule interleaved when vp > 1, else 1f1b; attention=unfused"
	echo "         (Megatron-LM of 2021 ran scores, softmax, dropout and context as separate kernels)"
	echo "plan:    other plan keys shown only where they differ from cp=1 sp=0 recompute=full zero=0 fp16"
	echo
	awk -F '\t' '
	function abs(x) { return x < 0 ? -x : x }
	BEGIN {
		printf "%3s  %-11s %5s  %-40s %10s %11s %8s\n", "#", "model", "gpus", "plan", "measured_s",
			"predicted_s", "error_%"
	}
	{
		rows++
		if ($6 == "ok") {
			e = ($7 - $5) / $5 * 100
			printf "%3d  %-11s %5d  %-40s %10.2f %11.2f %+8.1f\n", $1, $2, $3, $4, $5, $7, e
			ok++; sum += abs(e)
			if (ok == 1 || abs(e) > maxe) { maxe = abs(e); maxrow = $2 }
		} else {
			if ($6 == "rejected") { rej++; what = "rejected: " $8 }
			else if ($6 == "nofit") { nofit++; what = "does not fit: " $8 }
			else { err++; what = "error: " $8 }
			printf "%3d  %-11s %5d  %-40s %10.2f  %s\n", $1, $2, $3, $4, $5, what
		}
	}
	END {
		print ""
		printf "rows %d: compared %d, rejected %d, did not fit %d, errors %d\n", rows, ok, rej, nofit, err
		if (ok > 0) {
			printf "MAE %.1f %%, max |error| %.1f %% (%s)\n", sum / ok, maxe, maxrow
			printf "SUMMARY sc21 rows=%d compared=%d rejected=%d nofit=%d errors=%d mae_pct=%.3f max_abs_pct=%.3f\n",
				rows, ok, rej, nofit, err, sum / ok, maxe
		} else {
			print "MAE n/a (no row compared)"
			printf "SUMMARY sc21 rows=%d compared=0 rejected=%d nofit=%d errors=%d mae_pct=nan max_abs_pct=nan\n",
				rows, rej, nofit, err
		}
	}' "$out"
	csv_rows sc21 "$out" 1
}

# ------------------------------------------------------------------------------------------ vTrain
vtrain() {
	csv=$valdir/vtrain_multi.csv
	[ -r "$csv" ] || die "cannot read $csv"
	[ -r "$vtrain_cluster" ] || die "cannot read $vtrain_cluster"
	out=$tmp/vtrain.tsv
	: >"$out"
	n=0
	tail -n +2 "$csv" | tr -d '\r' | {
		while IFS=, read -r size gpus gbs mbs hidden heads layers seq tp dp pp ms rest; do
			[ -n "$size" ] || continue
			n=$((n + 1))
			label="tp=$tp pp=$pp dp=$dp mbs=$mbs gbs=$gbs"
			if ! isnum "$gpus" "$gbs" "$mbs" "$hidden" "$heads" "$layers" "$seq" "$tp" "$dp" "$pp"; then
				st=error pred="" msg="malformed row in the CSV"
			elif [ $((tp * pp * dp)) -ne "$gpus" ]; then
				st=error pred="" msg="data: tp*pp*dp = $((tp * pp * dp)) != # GPUs $gpus"
			else
				run_vtrain "vtrain-${size}b" "$layers" "$hidden" "$heads" "$seq" "$gpus" "$tp" "$pp" "$dp" \
					"$mbs" "$gbs"
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$size" "$gpus" "$label" "$ms" \
				"$st" "${pred:--}" "${msg:--}" >>"$out"
		done
	}

	echo "== vTrain ground truth (Bang et al., MICRO'24): Megatron-DeepSpeed on A100 clusters (ranking test) =="
	echo "data:    $csv"
	echo "         (VIA-Research/vTrain data/ground_truth_multi.csv, commit f8dda84; measured = iteration time (ms))"
	echo "strata:  $strata $command --cluster $vtrain_cluster --gpus <row's GPUs>"
	echo "         (A100-SXM-80GB, 8 per node, NVLink 300 GB/s per direction, 4 x 200 Gb/s NICs per node),"
	echo "         model JSON built from the row (GPT: ffn 4h, vocab 50257, gelu, layernorm, learned"
	echo "         positions, tied embeddings, bias, dropout); plan recompute=full zero=0 sp=0 fp16 1f1b"
	echo "         grad_bytes=2 (DeepSpeed's fp16 engine keeps and all-reduces 16-bit gradients)"
	echo "         attention=unfused (Megatron-DeepSpeed's core attention of 2022, without FlashAttention)"
	echo "rank:    1 = fastest within the model size, among the compared rows (measured / predicted)"
	echo
	awk -F '\t' "$taub_awk"'
	function abs(x) { return x < 0 ? -x : x }
	{
		rows++
		r = rows
		id[r] = $1; size[r] = $2; gpus[r] = $3; label[r] = $4; meas[r] = $5; st[r] = $6
		msg[r] = $8
		if ($6 == "ok") pred[r] = $7 * 1000
		if (!($2 in seen)) { seen[$2] = 1; ng++; group[ng] = $2 }
	}
	END {
		# ranks within each size group, compared rows only
		for (i = 1; i <= rows; i++) {
			if (st[i] != "ok") continue
			rm[i] = 1; rp[i] = 1
			for (j = 1; j <= rows; j++) {
				if (st[j] != "ok" || size[j] != size[i]) continue
				if (meas[j] < meas[i]) rm[i]++
				if (pred[j] < pred[i]) rp[i]++
			}
		}
		printf "%3s  %6s %5s  %-34s %11s %12s %8s %9s\n", "#", "size", "gpus", "plan",
			"measured_ms", "predicted_ms", "error_%", "rank m/p"
		for (g = 1; g <= ng; g++) {
			for (i = 1; i <= rows; i++) {
				if (size[i] != group[g]) continue
				if (st[i] == "ok") {
					e = (pred[i] - meas[i]) / meas[i] * 100
					printf "%3d  %6s %5d  %-34s %11.1f %12.1f %+8.1f %9s\n", id[i], size[i] "B",
						gpus[i], label[i], meas[i], pred[i], e, rm[i] "/" rp[i]
					ok++; sum += abs(e)
				} else {
					if (st[i] == "rejected") { rej++; what = "rejected: " msg[i] }
					else if (st[i] == "nofit") { nofit++; what = "does not fit: " msg[i] }
					else { err++; what = "error: " msg[i] }
					printf "%3d  %6s %5d  %-34s %11.1f  %s\n", id[i], size[i] "B", gpus[i], label[i],
						meas[i], what
				}
			}
		}
		print ""
		print "Kendall tau-b between measured and predicted iteration time, per model size:"
		for (g = 1; g <= ng; g++) {
			n = 0; tot = 0
			for (i = 1; i <= rows; i++) {
				if (size[i] != group[g]) continue
				tot++
				if (st[i] == "ok") { n++; x[n] = meas[i]; y[n] = pred[i] }
			}
			tau = taub(n, x, y)
			if (tau != "nan") {
				printf "  %6s  rows %3d, compared %3d: tau-b %+.3f  (pairs %d: concordant %d, discordant %d, tied measured %d, tied predicted %d)\n",
					group[g] "B", tot, n, tau, tb_pairs, tb_conc, tb_disc, tb_tx, tb_ty
				taus = taus sprintf("TAU vtrain size=%s rows=%d compared=%d tau_b=%.4f\n", group[g], tot, n, tau)
			} else {
				printf "  %6s  rows %3d, compared %3d: tau-b n/a (too few rows or all tied)\n",
					group[g] "B", tot, n
				taus = taus sprintf("TAU vtrain size=%s rows=%d compared=%d tau_b=nan\n", group[g], tot, n)
			}
		}
		print ""
		printf "rows %d: compared %d, rejected %d, did not fit %d, errors %d\n", rows, ok, rej, nofit, err
		if (ok > 0) {
			printf "MAE %.1f %% over the compared rows (information only: the cluster is not published)\n",
				sum / ok
			mae = sprintf("%.3f", sum / ok)
		} else {
			mae = "nan"
		}
		printf "SUMMARY vtrain rows=%d compared=%d rejected=%d nofit=%d errors=%d mae_pct=%s\n",
			rows, ok, rej, nofit, err, mae
		printf "%s", taus
	}' "$out"
	csv_rows vtrain "$out" 1000
}

# ------------------------------------------------------------------------------- vTrain single node
vtrain_single() {
	csv=$valdir/vtrain_single.csv
	[ -r "$csv" ] || die "cannot read $csv"
	[ -r "$vtrain_cluster" ] || die "cannot read $vtrain_cluster"
	out=$tmp/vtrain_single.tsv
	: >"$out"
	n=0
	tail -n +2 "$csv" | tr -d '\r' | {
		while IFS=, read -r gpus gbs mbs hidden heads layers seq tp dp pp ms rest; do
			[ -n "$gpus" ] || continue
			n=$((n + 1))
			if ! isnum "$gpus" "$gbs" "$mbs" "$hidden" "$heads" "$layers" "$seq" "$tp" "$dp" "$pp"; then
				st=error pred="" msg="malformed row in the CSV"
			elif [ $((tp * pp * dp)) -ne "$gpus" ]; then
				st=error pred="" msg="data: tp*pp*dp = $((tp * pp * dp)) != # GPUs $gpus"
			else
				# the row's GPUs as one node of the vTrain cluster (2 and 4 GPUs are not a multiple
				# of its 8 per node): same GPU and NVLink, no inter-node links used
				cl=$tmp/cluster-$gpus.json
				[ -r "$cl" ] || sed -e 's/"nodes": *[0-9]*/"nodes": 1/' \
					-e "s/\"gpus_per_node\": *[0-9]*/\"gpus_per_node\": $gpus/" "$vtrain_cluster" >"$cl"
				vtrain_cluster=$cl run_vtrain "vtrain-l${layers}-h$hidden" "$layers" "$hidden" "$heads" "$seq" "$gpus" "$tp" \
					"$pp" "$dp" "$mbs" "$gbs"
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "l=$layers h=$hidden a=$heads s=$seq" \
				"$gpus" "$gbs" "tp=$tp pp=$pp dp=$dp mbs=$mbs" "$tp" "$ms" "$st" "${pred:--}" "${msg:--}" \
				>>"$out"
		done
	}

	echo "== vTrain single-node ground truth (Bang et al., MICRO'24): 0.4-1.3B models on 2-8 A100 (ranking test) =="
	echo "data:    $csv"
	echo "         (VIA-Research/vTrain data/ground_truth_single.csv, commit f8dda84; measured = iteration time (ms))"
	echo "strata:  $strata $command --cluster <$vtrain_cluster as one node"
	echo "         of the row's GPUs> --gpus <row's GPUs>, model and plan built from the row as for the"
	echo "         multi-node set (vtrain)"
	echo "groups:  rows of the same model, GPU count and global batch: they differ only in tp, pp, dp and"
	echo "         micro-batch; Kendall tau-b between measured and predicted iteration time per group"
	echo
	awk -F '\t' "$taub_awk"'
	function abs(x) { return x < 0 ? -x : x }
	{
		rows++
		key = $2 SUBSEP $3 SUBSEP $4
		if (!(key in gi)) { ng++; gi[key] = ng; gname[ng] = $2 " gpus=" $3 " gbs=" $4 }
		g = gi[key]; gtot[g]++
		if ($8 != "ok") {
			if ($8 == "rejected") { rej++; what = "rejected: " $10 }
			else if ($8 == "nofit") { nofit++; what = "does not fit: " $10 }
			else { err++; what = "error: " $10 }
			printf "%5d  %-26s gpus=%d gbs=%-4d %-26s %9.1f ms  %s\n", $1, $2, $3, $4, $5, $7, what
			next
		}
		e = ($9 * 1000 - $7) / $7 * 100
		ok++; sum += abs(e)
		gn[g]++; gx[g, gn[g]] = $7; gy[g, gn[g]] = $9; gsum[g] += abs(e)
		tpn[$6]++; tpsum[$6] += e; tpabs[$6] += abs(e)
	}
	END {
		if (rej + nofit + err > 0) print ""
		printf "%-44s %5s %8s %7s %7s\n", "group", "rows", "compared", "tau-b", "MAE_%"
		nt = 0
		for (g = 1; g <= ng; g++) {
			n = gn[g] + 0
			for (i = 1; i <= n; i++) { x[i] = gx[g, i]; y[i] = gy[g, i] }
			tau = taub(n, x, y)
			if (tau != "nan") {
				nt++; t[nt] = tau; tsum += tau
				if (tau >= 0.5) nge++
				printf "%-44s %5d %8d %+7.3f %7.1f\n", gname[g], gtot[g], n, tau, gsum[g] / n
			} else {
				printf "%-44s %5d %8d %7s %7s\n", gname[g], gtot[g], n, "n/a", n ? sprintf("%.1f", gsum[g] / n) : "-"
			}
		}
		print ""
		print "error by tensor parallel degree (information: the cluster is not published):"
		for (tp = 1; tp <= 64; tp *= 2)
			if (tpn[tp]) printf "  tp=%-2d  rows %4d: mean error %+6.1f %%, MAE %5.1f %%\n", tp, tpn[tp],
				tpsum[tp] / tpn[tp], tpabs[tp] / tpn[tp]
		print ""
		printf "rows %d: compared %d, rejected %d, did not fit %d, errors %d\n", rows, ok, rej, nofit, err
		mae = ok > 0 ? sprintf("%.3f", sum / ok) : "nan"
		if (ok > 0) printf "MAE %.1f %% over the compared rows (information only)\n", sum / ok
		if (nt > 0) {
			for (i = 2; i <= nt; i++) {   # insertion sort for the median
				v = t[i]
				for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]
				t[j + 1] = v
			}
			med = nt % 2 ? t[(nt + 1) / 2] : (t[nt / 2] + t[nt / 2 + 1]) / 2
			printf "groups %d, with tau-b %d: mean tau-b %+.3f, median %+.3f, tau-b >= 0.5 in %d (%.0f %%)\n",
				ng, nt, tsum / nt, med, nge, 100 * nge / nt
			tmean = sprintf("%.4f", tsum / nt); tmed = sprintf("%.4f", med)
			tfrac = sprintf("%.4f", nge / nt)
		} else {
			printf "groups %d, none with a computable tau-b\n", ng
			tmean = "nan"; tmed = "nan"; tfrac = "nan"
		}
		printf "SUMMARY vtrain_single rows=%d compared=%d rejected=%d nofit=%d errors=%d mae_pct=%s groups=%d tau_groups=%d tau_mean=%s tau_median=%s tau_ge_0_5=%s\n",
			rows, ok, rej, nofit, err, mae, ng, nt, tmean, tmed, tfrac
	}' "$out"
	[ -z "$csv_out" ] || awk -F '\t' '$8 == "ok" {
		name = $2 ", " $3 " GPUs, gbs=" $4 ", " $5
		printf "\"%s\",%.10g,%s,vtrain_single\n", name, $7 / 1000, $9
	}' "$out" >>"$tmp/acc.csv"
}

# ------------------------------------------------------------------------------------------ modern
# modern [settings]: the bundle as published (set modern) or with scripts/modern_settings.tsv
# (set modern_settings)
modern() {
	bundle=$valdir/modern_public.json
	[ -r "$bundle" ] || die "cannot read $bundle"
	name=modern
	mode=${1:-}
	set --
	if [ "$mode" = settings ]; then
		name=modern_settings
		settings=$(dirname "$0")/modern_settings.tsv
		[ -r "$settings" ] || die "cannot read $settings"
		set -- --settings "$settings"
		echo "== Today's runs with the settings their sources state (scripts/modern_settings.tsv) =="
	else
		echo "== Today's runs: Megatron-LM/Megatron-Core on H100, torchtitan on H100 and A100 (absolute and ranking test) =="
	fi
	echo "data:    $bundle"
	echo "strata:  $strata validate --points <data>${1:+ --settings $2} --command $command"
	echo
	if ! "$strata" validate --points "$bundle" "$@" --command "$command" ${csv_out:+--csv "$tmp/$name.csv"} \
		>"$tmp/$name.txt" 2>"$tmp/err"; then
		die "strata validate failed: $(awk 'NF { print; exit }' "$tmp/err")"
	fi
	# strata's sets are this script's NAME-strict and NAME-loose, its "all" the set NAME
	awk -v n="$name" '$1 == "SUMMARY" { $2 = $2 == "all" ? n : n "-" $2 }
	$1 == "TAU" { $1 = "TAU " n }
	{ print }' "$tmp/$name.txt"
	[ -z "$csv_out" ] || awk -v n="$name" 'NR > 1 { sub(/,[^,]*$/, "," n); print }' "$tmp/$name.csv" >>"$tmp/acc.csv"
}

[ -z "$csv_out" ] || echo "name,measured,predicted,set" >"$tmp/acc.csv"
case $which_set in
sc21) sc21 ;;
vtrain) vtrain ;;
vtrain_single) vtrain_single ;;
modern) modern ;;
modern_settings) modern settings ;;
all) sc21; echo; vtrain; echo; vtrain_single; echo; modern; echo; modern settings ;;
esac
if [ -n "$csv_out" ]; then
	# beside the target, then renamed: a reader never sees half a file
	if ! cp "$tmp/acc.csv" "$csv_out.tmp.$$" || ! mv -f "$csv_out.tmp.$$" "$csv_out"; then
		rm -f "$csv_out.tmp.$$"
		die "cannot write $csv_out"
	fi
fi
exit 0
