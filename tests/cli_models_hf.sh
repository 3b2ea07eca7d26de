#!/bin/sh
# Every HuggingFace config of ../shared/ecosystem/hf (40 files, 31 architectures; issue 15) through
# `strata estimate` on 8 H100s (tp=1, pp=8, gbs=64): exit 0, or 1 only with "fits": false in the
# JSON; structure strata does not price (a variant of one file) exits 2 with one line naming the key. Plus what
# the importer says (notes on stderr), Python's Infinity accepted only in HuggingFace configs, and
# `strata models` showing the new structure. Parameter counts against MANIFEST.tsv: the structure
# suite of tests/check_strata. Environment (set by automake): STRATA, SRCDIR. Exit 77 without ../shared.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

HF=$SRCDIR/../shared/ecosystem/hf
if [ ! -f "$HF/MANIFEST.tsv" ]; then
	echo "SKIP: $HF/MANIFEST.tsv not found"
	exit 77
fi
start_tests models_hf

echo "# --- every file: estimate exits 0, or 1 when the plan does not fit"
for f in "$HF"/*.json; do
	base=$(basename "$f")
	run estimate --model "$f" --cluster dgx-h100 --gpus 8 --plan tp=1,pp=8,gbs=64 --json
	if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q '"fits": *false' "$T/out"; }; then
		ok "$base (exit $rc)"
	else
		nok "$base: want exit 0, or 1 with fits false"
	fi
done

sed 's/"num_kv_shared_layers": 0/"num_kv_shared_layers": 10/' "$HF/aic_gemma-4-26B-A4B.json" >"$T/shared_kv.json"
run estimate --model "$T/shared_kv.json" --cluster dgx-h100 --gpus 8 --plan tp=1,pp=8,gbs=64
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] &&
	grep -q "key 'num_kv_shared_layers': strata cannot price" "$T/err"; then
	ok "key/value caches shared across blocks refused naming the key"
else
	nok "want exit 2 and one line naming num_kv_shared_layers"
fi

echo "# --- the last three architectures: sparse attention, Gated DeltaNet, Gemma 4's global heads"
run estimate --model "$HF/aic_GLM-5.json" --cluster dgx-h100 --gpus 64 --plan tp=8,pp=8,gbs=64 --ops
if grep -q "index_logits" "$T/out" && grep -q "index_topk" "$T/out"; then
	ok "GLM-5: the indexer's operators"
else
	nok "want GLM-5's index_logits and index_topk in --ops"
fi
run estimate --model "$HF/aic_Qwen3.5-27B.json" --cluster dgx-h100 --gpus 8 --plan tp=4,pp=2,gbs=64 --ops
if grep -q "gdn_scan" "$T/out" && grep -q "out_gate" "$T/out"; then
	ok "Qwen3.5: Gated DeltaNet blocks and the gated attention output"
else
	nok "want gdn_scan and out_gate in --ops"
fi
run estimate --model "$HF/aic_gemma-4-26B-A4B.json" --cluster dgx-h100 --gpus 8 --plan tp=4,pp=2,gbs=64
if [ $rc -eq 2 ] && grep -q "key 'tp': the global blocks' kv heads" "$T/err"; then
	ok "Gemma 4: tp must divide the global blocks' 2 kv heads"
else
	nok "want tp=4 refused for Gemma 4's global kv heads"
fi

echo "# --- Megatron-LM emission: every flag the plan's numbers assume, or the key it has no flag for"
run plan --model deepseek-v3 --cluster dgx-h100 --gpus 256 --gbs 1024 --top 1 --emit megatron
if [ $rc -eq 0 ] && grep -q -- "--multi-latent-attention" "$T/out" && grep -q -- "--moe-router-num-groups 8" "$T/out" &&
	grep -q -- "--moe-shared-expert-intermediate-size 2048" "$T/out" && grep -q -- "--rotary-base 10000" "$T/out"; then
	ok "deepseek-v3: MLA, group-limited routing, shared expert and rotary base emitted"
else
	nok "want deepseek-v3's MLA, routing, shared-expert and rotary flags"
fi
run plan --model "$HF/aic_Qwen3.5-27B.json" --cluster dgx-h100 --gpus 8 --gbs 64 --top 1 --emit megatron
if [ $rc -eq 1 ] && grep -q "none that megatron can run (the last: key 'layer_pattern'" "$T/err"; then
	ok "Qwen3.5: --emit megatron refused naming layer_pattern (Gated DeltaNet blocks)"
else
	nok "want exit 1 naming layer_pattern"
fi

echo "# --- what the importer assumed, on stderr"
run estimate --model "$HF/aic_Llama-4-Scout-17B-16E-Instruct.json" --cluster dgx-h100 --gpus 8 --plan tp=1,pp=8,gbs=64
if grep -q "language model only" "$T/err" && grep -q "seq_len 8192 from rope_scaling" "$T/err"; then
	ok "text_config and the pre-training context said"
else
	nok "want the text_config and seq_len notes"
fi
run estimate --model "$HF/aic_Llama-4-Scout-17B-16E-Instruct.json" --cluster dgx-h100 --gpus 8 \
	--plan tp=1,pp=8,gbs=64,seq=2048 --json
if grep -q 'seq=2048,' "$T/out"; then ok "--seq wins over the default"; else nok "want seq=2048 in the plan"; fi
sed 's/"model_type": "mimo"/"model_type": "mimo_next"/' "$HF/aic_MiMo-7B-Base.json" >"$T/unknown.json"
run estimate --model "$T/unknown.json" --cluster dgx-h100 --gpus 8 --plan tp=1,pp=8,gbs=64
if [ $rc -le 1 ] && grep -q "model_type 'mimo_next' is new to strata" "$T/err"; then
	ok "an unknown model_type imports with a note"
else
	nok "want an import with a note"
fi

echo "# --- Python's Infinity: HuggingFace configs only"
run estimate --model "$HF/aic_Nemotron-H-56B-Base-8K.json" --cluster dgx-h100 --gpus 8 --plan tp=8,gbs=64
if [ $rc -le 1 ]; then ok "Nemotron-H (time_step_limit [0.0, Infinity]) imports"; else nok "Nemotron-H refused"; fi
printf '{ "name": "x", "layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "window": Infinity }\n' >"$T/inf.json"
run estimate --model "$T/inf.json" --cluster dgx-h100 --gpus 8 --plan tp=1,gbs=8
if [ $rc -eq 2 ] && grep -q "invalid JSON" "$T/err"; then ok "strata JSON stays strict"; else nok "want invalid JSON"; fi

echo "# --- strata models shows the structure"
run models
if grep -q "MLA (q_lora 1536, kv_lora 512" "$T/out" && grep -q "3 block kinds (54 'M', 54 '-', 10 '\*')" "$T/out"; then
	ok "deepseek-v3 and nemotron-h-56b described"
else
	nok "want the structure lines"
fi
run models --json
if grep -q '"active_params"' "$T/out" && grep -q '"mtp_params"' "$T/out" && grep -q '"layer_pattern"' "$T/out"; then
	ok "models --json carries active and MTP parameters and the block pattern"
else
	nok "want active_params, mtp_params and layer_pattern"
fi
run estimate --model nemotron-h-56b --cluster dgx-h100 --gpus 64 --plan tp=8,pp=8,gbs=64 --ops
if grep -q "block: Mamba-2, no MLP (54 of 118)" "$T/out" && grep -q "block: attention, no MLP (10 of 118)" "$T/out" &&
	grep -q "ssd_scan" "$T/out"; then
	ok "estimate --ops lists every kind of block"
else
	nok "want the three kinds of Nemotron-H's blocks in --ops"
fi
finish_tests
