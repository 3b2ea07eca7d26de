#!/bin/sh
# shellcheck disable=SC2086,SC2012,SC2016 # fixed argument lists are split on purpose; awk programs in single quotes
# Golden CLI test, part 2: bad input. The project rule: bad input of any kind (missing file, malformed
# JSON, wrong types, unknown keys, zero, negative or absurd sizes, impossible plans, bad options) gets
# a one-line error naming the file, position or key, exit status 2, and no partial output; never a
# crash. For every case this checks: exit status 2, nothing on stdout, exactly one (newline-terminated)
# line on stderr, and that the line contains the file, key or option it is about.
# Also: "no feasible plan" and "does not fit" exit 1, and `plan --out` leaves nothing behind when
# it fails.
# Checks marked "BUG:" fail with the current CLI on purpose: they record a bug still to fix.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
D=$SRCDIR/tests/data/io

start_tests cli-bad
if [ ! -d "$D/invalid" ]; then
	echo "ERROR: test data not found: $D/invalid"
	exit 99
fi

INV=$D/invalid
EST_M="estimate --cluster dgx-a100-80g --gpus 8 --plan tp=8"              # + --model FILE
EST_C="estimate --model llama2-7b --plan tp=8"                            # + --cluster FILE
EST_P="estimate --model llama2-7b --cluster dgx-a100-80g --gpus 16"       # + --plan FILE
E175="estimate --model gpt3-175b --cluster dgx-a100-80g"
E7="estimate --model llama2-7b --cluster dgx-a100-80g"

echo "# strata: $STRATA"
echo "# --- missing and unreadable files"
bad "missing model file" "$T/no-such-model.json" $EST_M --model "$T/no-such-model.json"
bad "missing cluster file" "$T/no-such-cluster.json" $EST_C --cluster "$T/no-such-cluster.json"
bad "missing plan file" "$T/no-such-plan.json" $EST_P --plan "$T/no-such-plan.json"
mkdir "$T/adir"
bad "model path is a directory" "$T/adir" $EST_M --model "$T/adir"
if [ "$(id -u)" -eq 0 ]; then
	echo "skip - unreadable (chmod 000) model file: running as root, which can read anything"
else
	cp "$D/valid/model_minimal.json" "$T/unreadable.json"
	chmod 000 "$T/unreadable.json"
	bad "unreadable (chmod 000) model file" "$T/unreadable.json" $EST_M --model "$T/unreadable.json"
	chmod 644 "$T/unreadable.json"
fi

echo "# --- malformed JSON: FILE:LINE:COL"
bad "malformed model JSON" "$INV/model_malformed.json
re::[0-9]+:[0-9]+:" $EST_M --model "$INV/model_malformed.json"
bad "malformed cluster JSON" "$INV/cluster_malformed.json
re::[0-9]+:[0-9]+:" $EST_C --cluster "$INV/cluster_malformed.json"
bad "malformed plan JSON" "$INV/plan_malformed.json
re::[0-9]+:[0-9]+:" $EST_P --plan "$INV/plan_malformed.json"
bad "empty model file" "$INV/model_empty.json" $EST_M --model "$INV/model_empty.json"

echo "# --- wrong types"
bad "model: string for an integer" "$INV/model_wrong_type.json
key 'hidden'" $EST_M --model "$INV/model_wrong_type.json"
bad "model: boolean for an integer" "$INV/model_bool_as_int.json
key 'layers'" $EST_M --model "$INV/model_bool_as_int.json"
bad "cluster: string for a number" "$INV/cluster_wrong_type.json
key 'inter_node.nic_gbit_per_s'" $EST_C --cluster "$INV/cluster_wrong_type.json"
bad "plan: string for an integer" "$INV/plan_pp_string.json
key 'pp'" $EST_P --plan "$INV/plan_pp_string.json"
bad "HF config: string for an integer" "$INV/hf_wrong_type.json
key 'hidden_size'" $EST_M --model "$INV/hf_wrong_type.json"

echo "# --- unknown keys"
bad "model: unknown key" "$INV/model_unknown_key.json
key 'hiden'" $EST_M --model "$INV/model_unknown_key.json"
bad "cluster: unknown top-level key" "$INV/cluster_unknown_top.json
key 'gpus'" $EST_C --cluster "$INV/cluster_unknown_top.json"
bad "cluster: unknown nested key" "$INV/cluster_unknown_nested.json
nic_gbps" $EST_C --cluster "$INV/cluster_unknown_nested.json"
bad "plan: unknown key" "$INV/plan_unknown_key.json
key 'tensor_parallel'" $EST_P --plan "$INV/plan_unknown_key.json"
bad "inline plan: unknown key" "key 'foo'" $E7 --gpus 16 --plan tp=8,foo=1

echo "# --- zero, negative and absurd sizes"
bad "model: layers 0" "$INV/model_zero_layers.json
key 'layers'" $EST_M --model "$INV/model_zero_layers.json"
bad "model: negative heads" "$INV/model_negative_heads.json
key 'heads'" $EST_M --model "$INV/model_negative_heads.json"
bad "model: layers 1000000000000" "$INV/model_absurd_layers.json
key 'layers'" $EST_M --model "$INV/model_absurd_layers.json"
bad "cluster: nodes 1000000000" "$INV/cluster_absurd_nodes.json
key 'nodes'" $EST_C --cluster "$INV/cluster_absurd_nodes.json"
bad "cluster: zero bandwidth" "$INV/cluster_zero_bw.json
key 'intra_node.bandwidth_gb_per_s'" $EST_C --cluster "$INV/cluster_zero_bw.json"
bad "--gpus 1000000000" "--gpus" $E7 --gpus 1000000000 --plan tp=8
bad "--gpus 0" "--gpus" $E7 --gpus 0 --plan tp=8
bad "--gpus -8" "--gpus" $E7 --gpus -8 --plan tp=8
bad "inline plan tp=0" "key 'tp'" $E7 --gpus 8 --plan tp=0
bad "inline plan gbs=-1" "key 'gbs'" $E7 --gpus 8 --plan tp=8,gbs=-1
bad "inline plan mbs=0" "key 'mbs'" $E7 --gpus 8 --plan tp=8,mbs=0
bad "inline plan tp=99999999999999999999" "key 'tp'" $E7 --gpus 8 --plan tp=99999999999999999999
bad "plan --gbs 0" "--gbs" plan --model llama2-7b --cluster dgx-a100-80g --gpus 8 --gbs 0
bad "plan --top 0" "--top" plan --model llama2-7b --cluster dgx-a100-80g --gpus 8 --top 0
bad "plan --seq 0" "--seq" plan --model llama2-7b --cluster dgx-a100-80g --gpus 8 --seq 0

echo "# --- impossible plans name the key"
bad "plan needs more GPUs than the cluster has (tp*pp*dp*cp = 128 > 64)" "tp*pp*dp*cp
re:key '[a-z]+'" $E175 --gpus 64 --plan tp=8,pp=8,dp=2
bad "gbs not divisible by dp*mbs" "key 'gbs'" $E175 --gpus 64 --plan tp=8,pp=8,mbs=3,gbs=64
bad "dualpipe with an odd pp" "key 'pp'" $E7 --gpus 24 --plan tp=8,pp=3,gbs=24,schedule=dualpipe
bad "sim of a dualpipe plan with too few micro-batches" "key 'gbs'" sim --model llama2-7b --cluster dgx-h100 \
	--gpus 32 --plan tp=8,pp=4,gbs=6,schedule=dualpipe
bad "heads (96) not divisible by tp (5)" "key 'tp'" $E175 --gpus 40 --plan tp=5,pp=8
bad "kv_heads (8) not divisible by tp (16), llama2-70b" "key 'tp'
kv_heads" estimate --model llama2-70b --cluster dgx-a100-80g --gpus 16 --plan tp=16
bad "ep > 1 on a dense model" "key 'ep'" $E7 --gpus 16 --plan tp=8,dp=2,ep=2
bad "ep (3) does not divide dp*cp (4), mixtral-8x7b" "key 'ep'" \
	estimate --model mixtral-8x7b --cluster dgx-a100-80g --gpus 16 --plan tp=4,dp=4,ep=3
bad "ep (8) does not divide dp*cp (4), mixtral-8x7b" "key 'ep'" \
	estimate --model mixtral-8x7b --cluster dgx-a100-80g --gpus 16 --plan tp=2,dp=4,ep=8,gbs=64
bad "pp*vp (64) chunks exceed layers (32)" "key 'vp'" $E7 --gpus 16 --plan tp=1,pp=16,vp=4
bad "bad enum value recompute=some" "key 'recompute'
some" $E7 --gpus 16 --plan tp=8,recompute=some
bad "inline plan item without '='" "tp" $E7 --gpus 16 --plan tp
bad "dtype fp8 on A100 (estimate)" "key 'dtype'" $E7 --gpus 16 --plan tp=8,dtype=fp8
bad "dtype fp8 on A100 (plan --dtype fp8)" "key 'dtype'" plan --model llama2-7b --cluster dgx-a100-80g --gpus 16 --dtype fp8
bad "dtype nvfp4 on H100 (no fp4 tensor cores)" "h100-sxm-80g has no nvfp4" estimate --model llama2-7b --cluster dgx-h100 --gpus 8 --plan tp=8,dtype=nvfp4
bad "dtype nvfp4 on MI355X (its fp4 is MXFP4)" "key 'dtype'" estimate --model llama2-7b --cluster mi355x --gpus 8 --plan tp=8,dtype=nvfp4
bad "dtype mxfp8 on MI300X (plan --dtype mxfp8)" "mi300x has no mxfp8" plan --model llama2-7b --cluster mi300x --gpus 8 --dtype mxfp8
bad "dtype fp4 is not a name (nvfp4 or mxfp8 say which)" "dtype" estimate --model llama2-7b --cluster dgx-b200 --gpus 8 --plan tp=8,dtype=fp4
# BUG checks (see the header): the inline spec silently takes the last of two values for a key
# (the JSON loaders reject duplicate keys), and a spec of nothing but commas is accepted as "all
# defaults" instead of being rejected.
bad "BUG: inline plan with a duplicate key (tp=8,tp=4)" "key 'tp'" $E7 --gpus 8 --plan tp=8,tp=4
bad "BUG: inline plan with no key=value at all (',,,')" "plan" $E7 --gpus 8 --plan ,,,

echo "# --- options and presets"
bad "unknown option --bogus" "--bogus" $E7 --gpus 16 --plan tp=8 --bogus
bad "unknown option to models" "--bogus" models --bogus
bad "stray argument to models" "extra" models extra
bad "estimate without --plan" "--plan" $E7 --gpus 16
bad "plan without --cluster" "--cluster" plan --model llama2-7b
bad "option without its value" "--plan" $E7 --gpus 16 --plan
bad "option with an empty value (--model=)" "--model" estimate --model= --cluster dgx-a100-80g --plan tp=8
bad "flag given a value (--json=1)" "--json" $E7 --plan tp=8 --json=1
bad "non-integer --gpus" "--gpus
1x6" $E7 --gpus 1x6 --plan tp=8
bad "--gpus not a multiple of 8 for a preset (estimate)" "key 'gpus'" $E7 --gpus 12 --plan tp=4
bad "--gpus not a multiple of 8 for a preset (plan)" "key 'gpus'" plan --model llama2-7b --cluster dgx-a100-80g --gpus 12
bad "--gpus beyond the NVL72 domain not whole host nodes" "key 'gpus'
4 GPUs per node" $E7 --cluster gb200-nvl72 --gpus 102 --plan tp=2
bad "scale-up domain larger than the cluster" "key 'scale_up.gpus'" $EST_C --cluster "$INV/cluster_scale_up_too_big.json"
bad "scale-up domain not dividing the GPUs" "key 'scale_up.gpus'" \
	$EST_C --cluster "$INV/cluster_scale_up_not_dividing.json"
bad "scale-up fabric unknown" "key 'scale_up.fabric'" $EST_C --cluster "$INV/cluster_scale_up_fabric.json"
bad "unknown model preset" "llama9-7b" estimate --model llama9-7b --cluster dgx-a100-80g --gpus 16 --plan tp=8
bad "unknown cluster preset" "dgx-z100" estimate --model llama2-7b --cluster dgx-z100 --gpus 16 --plan tp=8
bad "plan --emit with an unknown target" "fairseq" plan --model llama2-7b --cluster dgx-a100-80g --gpus 8 --emit fairseq
bad "plan --dtype with an unknown value" "int4" plan --model llama2-7b --cluster dgx-a100-80g --gpus 8 --dtype int4
bad "HuggingFace config missing a required key" "$INV/hf_missing_key.json
key 'num_attention_heads'" $EST_M --model "$INV/hf_missing_key.json"

echo "# --- every file of tests/data/io/invalid/ is rejected with one line naming it"
nfiles=0
badfiles=
for f in "$INV"/*.json; do
	base=${f##*/}
	case $base in
	model_* | hf_*) run $EST_M --model "$f" ;;
	cluster_*) run $EST_C --cluster "$f" ;;
	plan_*) run $EST_P --plan "$f" ;;
	*) continue ;;
	esac
	nfiles=$((nfiles + 1))
	if one_line_error 2 "$f"; then :; else
		nok "invalid/$base" "$why"
		badfiles="$badfiles $base"
	fi
done
if [ -z "$badfiles" ]; then ok "all $nfiles files of tests/data/io/invalid/ rejected (exit 2, one line naming the file)"; fi

echo "# --- exit 1: no feasible plan / the plan does not fit"
run $E175 --gpus 8 --plan tp=8
if [ $rc -eq 1 ] && grep -q 'DOES NOT FIT' "$T/out" && [ ! -s "$T/err" ]; then
	ok "estimate gpt3-175b on 8 GPUs (tp=8): exit 1, prints the estimate with DOES NOT FIT"
else
	nok "estimate that does not fit" "exit $rc, expected 1, 'DOES NOT FIT' on stdout and nothing on stderr"
fi
run $E175 --gpus 8 --plan tp=8 --json
if [ $rc -eq 1 ] && grep -Eq '"fits": *false' "$T/out" && [ ! -s "$T/err" ]; then
	ok "estimate --json that does not fit: exit 1, \"fits\": false"
else
	nok "estimate --json that does not fit" "exit $rc, expected 1, \"fits\": false on stdout and nothing on stderr"
fi

echo "# --- no partial output from plan --out"
NOFIT="plan --model gpt-1t --cluster a10-pcie-8 --gpus 8"
mkdir "$T/o1"
run $NOFIT --out "$T/o1/best.json"
if one_line_error 1 "" && [ -z "$(ls -A "$T/o1")" ]; then
	ok "search with no feasible plan: exit 1, one line, no best.json and no temporary file in the directory"
else
	nok "search with no feasible plan and --out" "${why:-the directory is not empty: $(ls -A "$T/o1" | tr '\n' ' ')}"
fi
run $NOFIT --out "$T/o1/best.json" --json
if one_line_error 1 "" && [ -z "$(ls -A "$T/o1")" ]; then
	ok "the same with --json: exit 1, nothing on stdout, the directory still empty"
else
	nok "search with no feasible plan, --out and --json" "${why:-the directory is not empty: $(ls -A "$T/o1" | tr '\n' ' ')}"
fi
echo "an older plan" >"$T/o1/best.json"
cp "$T/o1/best.json" "$T/sentinel"
run $NOFIT --out "$T/o1/best.json"
if [ $rc -eq 1 ] && cmp -s "$T/o1/best.json" "$T/sentinel" && [ "$(ls -A "$T/o1")" = best.json ]; then
	ok "a failed search leaves an existing --out file untouched"
else
	nok "a failed search with --out on an existing file" "exit $rc (expected 1); files: $(ls -A "$T/o1" | tr '\n' ' ')"
fi
OKPLAN="plan --model llama2-7b --cluster dgx-a100-80g --gpus 16 --gbs 64"
bad "--out into a missing directory" "$T/nodir/x.json" $OKPLAN --out "$T/nodir/x.json"
[ -e "$T/nodir" ] && nok "--out into a missing directory" "$T/nodir was created"
if [ ! -e /nonexistent ]; then
	bad "--out /nonexistent/dir/x.json" "/nonexistent/dir/x.json" $OKPLAN --out /nonexistent/dir/x.json
	[ -e /nonexistent ] && nok "--out /nonexistent/dir/x.json" "/nonexistent was created"
fi
mkdir -p "$T/o2/target"
bad "--out naming an existing directory" "$T/o2/target" $OKPLAN --out "$T/o2/target"
if [ -d "$T/o2/target" ] && [ -z "$(ls -A "$T/o2/target")" ] && [ "$(ls -A "$T/o2")" = target ]; then
	ok "  ... the directory is left as it was and no temporary file is left beside it"
else
	nok "--out naming a directory" "left behind in $T/o2: $(ls -AR "$T/o2" 2>&1 | tr '\n' ' ')"
fi
mkdir "$T/o3"
run $OKPLAN --emit megatron --out "$T/o3/best.json"
if [ $rc -eq 0 ]; then
	echo "note - the best plan is expressible in Megatron-LM here, so --emit cannot fail: check skipped"
elif one_line_error 2 "re:key '[a-z_]+'" && [ -z "$(ls -A "$T/o3")" ]; then
	ok "--emit that cannot express the best plan: exit 2, one line naming the key, no --out file written"
else
	nok "--emit failure with --out" "${why:-files left: $(ls -A "$T/o3" | tr '\n' ' ')}"
fi

# --out and --trace replace a file through rename(2): a device or FIFO there must be refused (as
# root, rename once replaced /dev/full), and a symbolic link must stay a link to the new file
mkdir "$T/o4"
if mkfifo "$T/o4/fifo" 2>/dev/null; then
	bad "--out naming a FIFO" "a FIFO, not a regular file" $OKPLAN --out "$T/o4/fifo"
	bad "sim --trace naming a FIFO" "a FIFO, not a regular file" sim --model llama2-7b --cluster dgx-a100-80g --gpus 8 --plan tp=8 --trace "$T/o4/fifo"
	if [ -p "$T/o4/fifo" ] && [ "$(ls -A "$T/o4")" = fifo ]; then ok "  ... the FIFO is still a FIFO, nothing left beside it"; else nok "--out FIFO" "$(ls -lA "$T/o4")"; fi
	rm -f "$T/o4/fifo"
fi
echo old >"$T/o4/real.json"
ln -s real.json "$T/o4/link.json"
run $OKPLAN --out "$T/o4/link.json"
if [ $rc -eq 0 ] && [ -L "$T/o4/link.json" ] && grep -q '"strata-plan"' "$T/o4/real.json" && [ "$(ls -A "$T/o4" | tr '\n' ' ')" = "link.json real.json " ]; then
	ok "--out through a symbolic link: the link stays, its file gets the plan"
else
	nok "--out through a symbolic link" "exit $rc; $(ls -lA "$T/o4" | tr '\n' ' ')"
fi
ln -s missing.json "$T/o4/dangling.json"
bad "--out naming a dangling symbolic link" "a symbolic link to a missing file" $OKPLAN --out "$T/o4/dangling.json"


echo "# --- a failed write to stdout is an error, not a silent success"
# BUG checks: today every command exits 0 when stdout cannot be written (the result is lost, and a
# script reading it sees status 0); expected: a non-zero status and one line on stderr.
if [ -w /dev/full ]; then
	for args in "estimate --model llama2-7b --cluster dgx-a100-80g --gpus 16 --plan tp=8 --json" \
		"plan --model llama2-7b --cluster dgx-a100-80g --gpus 16 --gbs 64 --json" "models"; do
		cmd="strata $args >/dev/full"
		"$STRATA" $args >/dev/full 2>"$T/err"
		rc=$?
		: >"$T/out"
		if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(nlines "$T/err")" -eq 1 ]; then
			ok "strata $args >/dev/full: exit $rc, one line: $(cat "$T/err")"
		else
			nok "BUG: strata $args >/dev/full (stdout write fails)" "exit $rc with $(nlines "$T/err") lines on stderr; expected a non-zero status and one line"
		fi
	done
else
	echo "skip - /dev/full not available: write-error checks skipped"
fi

finish_tests
