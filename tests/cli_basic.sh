#!/bin/sh
# shellcheck disable=SC2086,SC2012,SC2016 # fixed argument lists are split on purpose; awk programs in single quotes
# Golden CLI test, part 1: the basic commands and the --json contract of `strata estimate`.
#   --version, --help, no arguments, an unknown command; `strata models` / `strata clusters` (text and
#   --json) list every preset; `strata estimate` prints the contract keys and is deterministic; two
#   fixed estimates are compared with golden files in tests/golden/ (numbers to 1e-6 relative, since
#   floats may print differently across libc versions; strings and structure exactly).
#
# Regenerating the golden files (after a deliberate change of the cost model):
#   STRATA_REGOLD=1 make check TESTS=tests/cli_basic.sh
#   (or: STRATA_REGOLD=1 STRATA=/path/to/strata SRCDIR=/path/to/source sh tests/cli_basic.sh)
# rewrites tests/golden/*.json from the current binary instead of comparing; review the diff.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
GOLDEN=$SRCDIR/tests/golden
REGOLD=${STRATA_REGOLD:-0}

start_tests cli-basic

# Compares two flattened documents (golden first): same paths in the same order, numbers equal to
# RTOL relative (or 1e-12 absolute), everything else byte-equal. Prints the differences.
NUMCMP='
function num(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
function abs(x) { return x < 0 ? -x : x }
function report(msg) { if (++nbad <= 10) print msg }
NR == FNR { gp[NR] = $1; gv[NR] = substr($0, length($1) + 2); ng = NR; next }
{
	n++
	p = $1; v = substr($0, length($1) + 2)
	if (n > ng) { report("extra " p " = " v " (not in the golden file)"); next }
	if (p != gp[n]) { report("structure differs at item " n ": golden " gp[n] ", got " p " (not compared further)"); stop = 1; exit }
	if (num(v) && num(gv[n])) {
		a = gv[n] + 0; b = v + 0; d = abs(a - b); m = abs(a) > abs(b) ? abs(a) : abs(b)
		if (d > rtol * m && d > 1e-12) report(p ": golden " gv[n] ", got " v)
	} else if (v != gv[n]) report(p ": golden " gv[n] ", got " v)
}
END {
	if (n < ng && !stop) report("missing " gp[n + 1] " and " (ng - n - 1) " more items of the golden file")
	if (nbad > 10) print "... " (nbad - 10) " more differences"
	exit nbad > 0
}
'

echo "# strata: $STRATA"

# ------------------------------------------------------------------ version, help, usage errors
run --version
if [ $rc -eq 0 ] && grep -Eq '^strata [0-9]+\.[0-9]+' "$T/out" && [ "$(nlines "$T/out")" -eq 1 ] && [ ! -s "$T/err" ]; then
	ok "--version prints 'strata X.Y' and exits 0"
else
	nok "--version" "exit $rc, expected 0 and one line 'strata X.Y' on stdout"
fi

run --help
if [ $rc -eq 0 ] && grep -q '^usage: strata' "$T/out" && grep -q 'estimate' "$T/out" && grep -q 'plan' "$T/out" && [ ! -s "$T/err" ]; then
	ok "--help prints the usage on stdout and exits 0"
else
	nok "--help" "exit $rc, expected 0 and a usage naming estimate and plan on stdout"
fi

for sub in estimate plan models clusters; do
	run "$sub" --help
	if [ $rc -eq 0 ] && grep -q "^usage: strata $sub" "$T/out" && [ ! -s "$T/err" ]; then
		ok "$sub --help exits 0 with its usage"
	else
		nok "$sub --help" "exit $rc, expected 0 and 'usage: strata $sub' on stdout"
	fi
done

run
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && grep -q 'usage' "$T/err"; then
	ok "no arguments: usage on stderr, exit 2"
else
	nok "no arguments" "exit $rc, expected 2 with the usage on stderr and nothing on stdout"
fi

run frobnicate
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q 'frobnicate' "$T/err"; then
	ok "unknown command: one line naming it, exit 2"
else
	nok "unknown command" "exit $rc, expected 2, nothing on stdout, one stderr line naming 'frobnicate'"
fi

# ------------------------------------------------------------------ models
MODELS="gpt-1.7b gpt-3.6b gpt-7.5b gpt-18.4b gpt-39.1b gpt-76.1b gpt-145.6b gpt-310.1b gpt-529.6b gpt-1008b
gpt-22b gpt-175b gpt-530b gpt-1t gpt3-175b llama2-7b llama2-13b llama2-70b llama3-8b llama3-70b llama3-405b
mixtral-8x7b bloom-176b opt-175b"

run models
if [ $rc -eq 0 ] && [ ! -s "$T/err" ]; then ok "models exits 0"; else nok "models" "exit $rc, expected 0 and no stderr"; fi
cp "$T/out" "$T/models.txt"
missing=
for m in $MODELS; do
	awk -v m="$m" '$1 == m { f = 1 } END { exit !f }' "$T/models.txt" || missing="$missing $m"
done
if [ -z "$missing" ]; then ok "models lists all $(echo "$MODELS" | wc -w) presets"; else nok "models lists every preset" "missing:$missing"; fi
for pair in gpt3-175b:174.6B llama2-7b:6.7B; do
	m=${pair%%:*}
	p=${pair#*:}
	if awk -v m="$m" -v p="$p" '$1 == m { for (i = 2; i <= NF; i++) if ($i == p) f = 1 } END { exit !f }' "$T/models.txt"; then
		ok "models: $m has $p parameters"
	else
		nok "models: $m parameter count" "expected a column '$p' on the $m row, got: $(grep "^$m " "$T/models.txt")"
	fi
done

run models --json
cp "$T/out" "$T/models.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ "$(head -c 1 "$T/models.json")" = "{" ] &&
	awk "$FLATTEN" "$T/models.json" >"$T/models.flat"; then
	ok "models --json is one JSON object"
else
	nok "models --json" "exit $rc, expected 0 and one well-formed JSON object starting with {"
fi
missing=
for m in $MODELS; do
	grep -Eq "^\.models\[[0-9]+\]\.name \"$m\"\$" "$T/models.flat" || missing="$missing $m"
done
if [ -z "$missing" ]; then ok "models --json: \"models\" array names every preset"; else nok "models --json names every preset" "missing:$missing"; fi

# ------------------------------------------------------------------ clusters
CLUSTERS="dgx-a100-40g dgx-a100-80g dgx-h100 dgx-h200 l40s-pcie-8 a10-pcie-8 hgx-h800 hgx-h20 dgx-b200 dgx-b300
gb200-nvl72 gb300-nvl72 mi300x mi355x"
run clusters
cp "$T/out" "$T/clusters.txt"
missing=
for c in $CLUSTERS; do
	awk -v c="$c" '$1 == c { f = 1 } END { exit !f }' "$T/clusters.txt" || missing="$missing $c"
done
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ -z "$missing" ]; then
	ok "clusters exits 0 and lists all 14 presets"
else
	nok "clusters" "exit $rc (expected 0); missing:${missing:- none}"
fi

run clusters --json
cp "$T/out" "$T/clusters.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ "$(head -c 1 "$T/clusters.json")" = "{" ] &&
	awk "$FLATTEN" "$T/clusters.json" >"$T/clusters.flat"; then
	ok "clusters --json is one JSON object"
else
	nok "clusters --json" "exit $rc, expected 0 and one well-formed JSON object starting with {"
	: >"$T/clusters.flat"
fi
missing=
for c in $CLUSTERS; do
	grep -Eq "^\.clusters\[[0-9]+\]\.name \"$c\"\$" "$T/clusters.flat" || missing="$missing $c"
done
if [ -z "$missing" ]; then ok "clusters --json: \"clusters\" array names every preset"; else nok "clusters --json names every preset" "missing:$missing"; fi

# ------------------------------------------------------------------ estimate: contract and determinism
# attention=unfused: the golden file and the --ops list below are Megatron-LM's 2021 core attention
E1="--model gpt3-175b --cluster dgx-a100-80g --gpus 1024 --plan tp=8,pp=8,mbs=1,gbs=1536,sp=1,recompute=selective,attention=unfused"
run estimate $E1
cp "$T/out" "$T/e1.txt"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q 'iteration time' "$T/e1.txt" && grep -q 'MFU' "$T/e1.txt"; then
	ok "estimate (gpt3-175b, 1024 GPUs) exits 0; text has 'iteration time' and 'MFU'"
else
	nok "estimate text output" "exit $rc, expected 0, no stderr, 'iteration time' and 'MFU' on stdout"
fi

# --ops: every operator of a GPT block, each tp collective it implies (Megatron with sp: an
# all-gather before QKV and fc1, a reduce-scatter after the projection and fc2)
run estimate $E1 --ops
ops_missing=""
for op in ln1 qkv scores softmax attn_dropout context proj ln2 fc1 act fc2 grad_accum embedding logits loss; do
	grep -Eq "^  $op " "$T/out" || ops_missing="$ops_missing $op"
done
nag=$(grep -Ec '^  (ln1|ln2) .* tp allgather/reducescatter' "$T/out")
nrs=$(grep -Ec '^  (proj|fc2) .* tp reducescatter/allgather' "$T/out")
if [ $rc -eq 0 ] && [ -z "$ops_missing" ] && [ "$nag" -eq 2 ] && [ "$nrs" -eq 2 ]; then
	ok "estimate --ops lists every operator and Megatron's sp collectives"
else
	nok "estimate --ops" "exit $rc; missing ops:${ops_missing:- none}; all-gathers $nag (want 2), reduce-scatters $nrs (want 2)"
fi

run estimate $E1 --json
cp "$T/out" "$T/e1.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && awk "$FLATTEN" "$T/e1.json" >"$T/e1.flat"; then
	ok "estimate --json exits 0 with one JSON object"
else
	nok "estimate --json" "exit $rc, expected 0, no stderr, one well-formed JSON object"
	: >"$T/e1.flat"
fi
missing=
for k in iteration_time_s tokens_per_s model_tflops_per_gpu mfu memory_peak_gib; do
	grep -Eq "^\.$k -?[0-9]" "$T/e1.flat" || missing="$missing $k"
done
grep -Eq '^\.fits (true|false)$' "$T/e1.flat" || missing="$missing fits"
grep -Eq '^\.breakdown_s\.[a-z_]+ -?[0-9]' "$T/e1.flat" || missing="$missing breakdown_s"
if [ -z "$missing" ]; then
	ok "estimate --json has the contract keys (iteration_time_s tokens_per_s model_tflops_per_gpu mfu memory_peak_gib fits breakdown_s)"
else
	nok "estimate --json contract keys" "missing or not of the right type at the top level:$missing"
fi

run estimate $E1
if [ $rc -eq 0 ] && cmp -s "$T/out" "$T/e1.txt"; then ok "estimate text output is deterministic (identical bytes twice)"; else nok "estimate text determinism" "second run differs from the first (exit $rc)"; fi
run estimate $E1 --json
if [ $rc -eq 0 ] && cmp -s "$T/out" "$T/e1.json"; then ok "estimate --json output is deterministic (identical bytes twice)"; else nok "estimate --json determinism" "second run differs from the first (exit $rc)"; fi

# with fused attention (the default) one operator replaces scores, softmax, dropout and context
run estimate --model gpt3-175b --cluster dgx-a100-80g --gpus 1024 --plan tp=8,pp=8,mbs=1,gbs=1536,sp=1 --ops
if [ $rc -eq 0 ] && grep -Eq '^  attention +attention +[0-9.]+ +[0-9.]+ +[0-9.]+ compute ' "$T/out" &&
	! grep -Eq '^  (scores|softmax|attn_dropout|context|context_transpose) ' "$T/out"; then
	ok "estimate --ops with attention=flash lists one fused attention operator, compute-bound"
else
	nok "estimate --ops with attention=flash" "exit $rc; want an 'attention' operator of class attention and no unfused ones"
fi

# the fused kinds differ only in the kernel's rate: on an H100 (d 128, causal, 4k) FlashAttention-3
# (flash) 579 TFLOP/s forward, cuDNN's 518, FlashAttention-2's 319 (cost/compute.c); same memory
attn_fwd() { awk '$1 == "attention" && $2 == "attention" { print $3 }' "$T/out"; }
attn_mem() { awk '$1 == "memory" && $2 == "peak" { print $3 }' "$T/out"; }
A="--model llama2-7b --cluster dgx-h100 --gpus 8 --ops --plan tp=1,dp=8,mbs=1,gbs=64,zero=1,recompute=full"
run estimate $A; f_flash=$(attn_fwd); m_flash=$(attn_mem)
run estimate $A,attention=cudnn; f_cudnn=$(attn_fwd); m_cudnn=$(attn_mem)
run estimate $A,attention=fa2; f_fa2=$(attn_fwd); m_fa2=$(attn_mem)
if [ $rc -eq 0 ] && [ -n "$f_flash" ] && [ -n "$f_cudnn" ] && [ -n "$f_fa2" ] &&
	awk -v a="$f_flash" -v b="$f_cudnn" -v c="$f_fa2" 'BEGIN { exit !(a < b && b < c &&
		b / a > 579 / 518 * 0.99 && b / a < 579 / 518 * 1.01 && c / a > 579 / 319 * 0.99 && c / a < 579 / 319 * 1.01) }' &&
	[ "$m_flash" = "$m_cudnn" ] && [ "$m_flash" = "$m_fa2" ]; then
	ok "attention=flash|cudnn|fa2 on H100: forward times in the ratio of the kernels' rates, same memory"
else
	nok "attention kernels on H100" "forward ms flash $f_flash cudnn $f_cudnn fa2 $f_fa2; memory $m_flash $m_cudnn $m_fa2"
fi
run estimate --model llama2-7b --cluster dgx-a100-80g --gpus 8 --plan tp=1,dp=8,mbs=1,gbs=64,zero=1,recompute=full,attention=cudnn --ops
f_a_cudnn=$(attn_fwd)
run estimate --model llama2-7b --cluster dgx-a100-80g --gpus 8 --plan tp=1,dp=8,mbs=1,gbs=64,zero=1,recompute=full --ops
if [ $rc -eq 0 ] && [ -n "$f_a_cudnn" ] && [ "$f_a_cudnn" = "$(attn_fwd)" ]; then
	ok "attention=cudnn on A100 is priced as FlashAttention-2 (no published cuDNN table there)"
else
	nok "attention=cudnn on A100" "cudnn $f_a_cudnn vs flash $(attn_fwd) ms"
fi
# kernels=eager: PyTorch's eager chains cost time and memory; sim and estimate agree on both
K="--model llama3-8b --cluster dgx-h100 --gpus 8 --plan tp=1,pp=2,dp=4,mbs=1,gbs=16,seq=8192,zero=1,recompute=full"
tm() { awk '$1 == "iteration" && $2 == "time" { print ($3 == "(s)" ? $4 : $3) } $1 == "memory" && $2 == "peak" { print ($3 == "(GiB)" ? $4 : $3) }' "$T/out" | tr '\n' ' '; }
run estimate $K; e_fused=$(tm)
run estimate $K,kernels=eager; e_eager=$(tm)
run sim $K,kernels=eager; s_eager=$(tm)
if [ $rc -eq 0 ] && awk -v f="$e_fused" -v e="$e_eager" -v s="$s_eager" 'BEGIN { split(f, a, " "); split(e, b, " ");
	split(s, c, " "); exit !(b[1] > a[1] * 1.05 && b[2] > a[2] + 3 && c[2] == b[2] && c[1] > b[1] * 0.9 && c[1] < b[1] * 1.1) }'; then
	ok "kernels=eager: slower and more memory than fused; sim's memory peak equals the estimate's"
else
	nok "kernels=eager" "fused (time, GiB) $e_fused, eager $e_eager, sim eager $s_eager"
fi
run estimate $K,kernels=jit
if [ $rc -eq 2 ] && grep -q "kernels" "$T/err"; then ok "kernels=jit: exit 2 naming the key"; else nok "kernels=jit" "exit $rc"; fi
run plan --model llama3-8b --cluster dgx-h100 --gpus 8 --gbs 16 --top 1 --kernels eager
if [ $rc -eq 0 ] && grep -q '^best: .*kernels=eager' "$T/out"; then ok "plan --kernels eager: the best plan runs eager kernels"; else nok "plan --kernels eager" "exit $rc"; fi

run plan --model llama3-8b --cluster dgx-h100 --gpus 8 --gbs 16 --top 1 --kernels eager --emit torchtitan
k_eager=$(grep -c '^compile = false$' "$T/out")
run plan --model llama3-8b --cluster dgx-h100 --gpus 8 --gbs 16 --top 1 --emit torchtitan
if [ $rc -eq 0 ] && [ "$k_eager" = 1 ] && grep -q '^compile = true$' "$T/out"; then
	ok "--emit torchtitan: compile = false for kernels=eager, true for fused kernels"
else
	nok "--emit torchtitan compile" "exit $rc; eager plan's 'compile = false' lines: $k_eager"
fi
run plan --model llama3-8b --cluster dgx-h100 --gpus 8 --gbs 16 --top 1 --kernels eager --emit megatron
if [ $rc -eq 1 ] && grep -q "none that megatron can run" "$T/err"; then
	ok "--emit megatron with --kernels eager: no plan Megatron-LM can run (it has no eager mode)"
else
	nok "--emit megatron --kernels eager" "exit $rc"
fi
# torchtitan's release has no nvfp4 training: no plan can be emitted, and the message says why (the
# last refusal names the key); Megatron-LM's target has the recipe and gets it
run plan --model llama2-7b --cluster dgx-b200 --gpus 8 --gbs 64 --top 1 --dtype nvfp4 --emit torchtitan
if [ $rc -eq 1 ] && grep -q "none that torchtitan can run (the last: key 'dtype': .*nvfp4" "$T/err"; then
	ok "--emit torchtitan with --dtype nvfp4: refused, naming the key"
else
	nok "--emit torchtitan --dtype nvfp4" "exit $rc"
fi
run plan --model llama2-7b --cluster dgx-b200 --gpus 8 --gbs 64 --top 1 --dtype nvfp4 --emit megatron
if [ $rc -eq 0 ] && grep -q -- "--fp4-recipe nvfp4" "$T/out"; then
	ok "--emit megatron with --dtype nvfp4: its --fp4-format/--fp4-recipe flags"
else
	nok "--emit megatron --dtype nvfp4" "exit $rc"
fi

# the search's overlap dimension turns on every overlap a plan allows: with tp > 1 and sp inside a
# node that includes tp_overlap (TE's userbuffers: one node's tp group only, so plans refuse it
# beyond a node)
run plan --model gpt3-175b --cluster dgx-a100-80g --gpus 64 --gbs 64 --top 100 --max-tp 16
if [ $rc -eq 0 ] && awk '$1 ~ /^[0-9]+$/ && NF >= 17 { n++; if ($13 == 1 && $2 > 1 && $9 == 1) ov++ } END { exit !(n > 10 && ov > 0) }' "$T/out" &&
	grep -q '^best: .*tp_overlap=1' "$T/out"; then
	ok "plan: the overlap dimension includes tp_overlap where tp > 1 and sp (the best plan has it)"
else
	nok "plan overlap dimension" "exit $rc; want plans with ovl 1 at tp > 1, sp 1 and tp_overlap=1 in the best"
fi
run estimate --model llama2-7b --cluster dgx-h100 --gpus 16 --plan tp=16,mbs=1,gbs=16,sp=1,tp_overlap=1
if [ $rc -eq 2 ] && grep -q "tp_overlap.*inside one node" "$T/err"; then
	ok "tp_overlap=1 with tp=16 over two 8-GPU nodes: exit 2 naming the key"
else
	nok "tp_overlap across nodes" "exit $rc: $(cat "$T/err")"
fi

# the tied embedding's all-reduce between the first and the last stage: inside one node when the
# pipeline is (its time then does not depend on the NICs), across two when the pipeline spans nodes
for g in 20 200; do
	printf '{"nodes":2,"gpus_per_node":8,"gpu":"a100-sxm-80g","intra_node":{"bandwidth_gb_per_s":300},"inter_node":{"nics_per_node":8,"nic_gbit_per_s":%s}}\n' "$g" >"$T/nic$g.json"
done
emb() { awk -F'"dp_comm": ' 'NF > 1 { split($2, a, /[,}]/); print a[1]; exit }' "$T/out"; }
run estimate --model gpt-1.7b --cluster "$T/nic20.json" --gpus 8 --plan tp=1,pp=8,mbs=1,gbs=16 --json
in20=$(emb)
run estimate --model gpt-1.7b --cluster "$T/nic200.json" --gpus 8 --plan tp=1,pp=8,mbs=1,gbs=16 --json
in200=$(emb)
run estimate --model gpt-1.7b --cluster "$T/nic20.json" --gpus 16 --plan tp=1,pp=16,mbs=1,gbs=16 --json
x20=$(emb)
run estimate --model gpt-1.7b --cluster "$T/nic200.json" --gpus 16 --plan tp=1,pp=16,mbs=1,gbs=16 --json
x200=$(emb)
if [ $rc -eq 0 ] && [ -n "$in20" ] && [ "$in20" = "$in200" ] && awk -v a="$x20" -v b="$x200" 'BEGIN { exit !(a > 5 * b) }'; then
	ok "tied embedding all-reduce: on NVLink inside a node ($in20 s at 20 and 200 Gb/s), on the NICs across two"
else
	nok "tied embedding all-reduce placement" "in a node: $in20 / $in200 s; across: $x20 / $x200 s"
fi

# plan --attention: every plan runs that kernel, and the emitted Megatron-LM flags name it
run plan --model llama2-7b --cluster dgx-h100 --gpus 8 --gbs 64 --top 1 --attention cudnn --emit megatron
if [ $rc -eq 0 ] && grep -q -- '--attention-backend fused' "$T/out" && grep -q '^best: .*attention=cudnn' "$T/out"; then
	ok "plan --attention cudnn: the best plan runs cuDNN's kernel, Megatron-LM gets --attention-backend fused"
else
	nok "plan --attention cudnn" "exit $rc; want best: ...attention=cudnn and --attention-backend fused"
fi
run plan --model llama2-7b --cluster dgx-h100 --gpus 8 --gbs 64 --attention fa3
if [ $rc -eq 2 ] && grep -q -- "--attention" "$T/err"; then ok "plan --attention fa3: exit 2 naming the option"; else nok "plan --attention fa3" "exit $rc"; fi
run estimate --model llama2-7b --cluster dgx-h100 --gpus 8 --plan tp=1,dp=8,mbs=1,gbs=64,attention=bogus
if [ $rc -eq 2 ] && grep -q "attention" "$T/err"; then ok "attention=bogus: exit 2 naming the key"; else nok "attention=bogus" "exit $rc"; fi

# ------------------------------------------------------------------ golden files
# golden NAME ARGS...: run `strata estimate ARGS --json` and compare it with tests/golden/NAME.json
# (or rewrite that file when STRATA_REGOLD=1). The exit status must be 0 when "fits" is true and 1
# when it is false.
golden() {
	name=$1
	shift
	run estimate "$@" --json
	if [ $rc -ge 2 ] || [ -s "$T/err" ] || ! awk "$FLATTEN" "$T/out" >"$T/got.flat" 2>"$T/flat.err"; then
		nok "golden $name: run" "exit $rc, expected 0 or 1, no stderr and one JSON object" "$(cat "$T/flat.err")"
		return
	fi
	if grep -q '^\.fits true$' "$T/got.flat"; then want=0; else want=1; fi
	if [ $rc -ne $want ]; then
		nok "golden $name: exit status" "exit $rc but fits is $(sed -n 's/^\.fits //p' "$T/got.flat") (expected exit $want)"
		return
	fi
	if [ "$REGOLD" = 1 ]; then
		if ! { mkdir -p "$GOLDEN" && cp "$T/out" "$GOLDEN/$name.json"; }; then
			nok "golden $name: regold" "cannot write $GOLDEN/$name.json"
			return
		fi
		ok "golden $name: REGOLD wrote $GOLDEN/$name.json"
		return
	fi
	if [ ! -r "$GOLDEN/$name.json" ]; then
		nok "golden $name" "no golden file $GOLDEN/$name.json (create it with STRATA_REGOLD=1)"
		return
	fi
	if ! awk "$FLATTEN" "$GOLDEN/$name.json" >"$T/want.flat" 2>"$T/flat.err"; then
		nok "golden $name" "the golden file $GOLDEN/$name.json is not JSON: $(cat "$T/flat.err")"
		return
	fi
	if awk -v rtol=1e-6 "$NUMCMP" "$T/want.flat" "$T/got.flat" >"$T/diff"; then
		ok "golden $name matches tests/golden/$name.json (numbers to 1e-6 relative)"
	else
		nok "golden $name differs from tests/golden/$name.json (if intended, regenerate with STRATA_REGOLD=1)" "$(cat "$T/diff")"
	fi
}

golden estimate_gpt3-175b_a100x1024 $E1
# mbs=2 without recompute does not fit in 80 GB: checks the exit-1 path of --json as well
golden estimate_llama2-7b_h100x8 --model llama2-7b --cluster dgx-h100 --plan tp=1,dp=8,mbs=2,gbs=64,zero=1,attention=unfused
# the same with fused attention, the default (no 4096 x 4096 scores, but still over 80 GB)
golden estimate_llama2-7b_h100x8_flash --model llama2-7b --cluster dgx-h100 --plan tp=1,dp=8,mbs=2,gbs=64,zero=1

finish_tests
