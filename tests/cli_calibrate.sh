#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: `strata calibrate` and profiles across GPUs.
#   - the hand-written Kineto trace tests/data/kineto/small.json calibrates to the golden profile
#     small.profile.json (dated by the trace's baseTimeNanoseconds; the source line names the path);
#     its gzip copy to the same profile; a summary on stdout, nothing on stderr;
#   - `strata estimate --profile` takes the profile: on A100s as is (no note) and with an
#     iteration time other than the default curves'; on H100s scaled, with exactly one note line
#     on stderr; `strata plan --profile` says the same;
#   - a profile in a folder of $STRATA_PROFILE_PATH is listed by `strata profiles` and taken by
#     name (--profile NAME) as by path; an unknown name exits 2 with one line;
#   - a profile for a GPU that is no preset (calibrate --gpu mygpu) cannot be scaled: exit 2, one
#     line naming key 'gpu';
#   - a trace of a GPU without a preset calibrates to a profile labelled with the device's name,
#     which a preset's cluster refuses (key 'gpu');
#   - bad input (missing, truncated, malformed, foreign or kernel-less traces, bad options,
#     unwritable --out) exits 2 with one line and leaves no output file.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
D=$SRCDIR/tests/data/kineto

start_tests cli-calibrate
if [ ! -f "$D/small.json" ]; then
	echo "ERROR: test data not found: $D/small.json"
	exit 99
fi
echo "# strata: $STRATA"
SOURCE_DATE_EPOCH=0
export SOURCE_DATE_EPOCH

# ------------------------------------------------------------------ the fixture
run calibrate --kineto "$D/small.json" --out "$T/p.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ -s "$T/p.json" ]; then
	ok "calibrate small.json: exit 0, nothing on stderr, profile written"
else
	nok "calibrate small.json" "exit $rc, expected 0, no stderr and $T/p.json"
fi
if grep -q '^compute *gemm bf16 *3 points from 5 calls' "$T/out" && grep -q '^collectives *allreduce intra 8 ranks' "$T/out" &&
	grep -q "^wrote $T/p.json\$" "$T/out"; then
	ok "the summary lists the tables and the file written"
else
	nok "calibrate summary" "expected 'compute gemm bf16 3 points from 5 calls', 'collectives allreduce intra 8 ranks' and 'wrote FILE'"
fi
# golden: everything but the source line, which names the path as given
grep -v '"source"' "$D/small.profile.json" >"$T/golden"
grep -v '"source"' "$T/p.json" >"$T/got"
if cmp -s "$T/golden" "$T/got" && grep -q "\"source\": \"kineto import of $D/small.json\"" "$T/p.json"; then
	ok "the profile equals tests/data/kineto/small.profile.json"
else
	nok "golden profile" "$T/p.json differs from $D/small.profile.json: $(diff "$T/golden" "$T/got" | head -n 6 | tr '\n' ' ')"
fi

run calibrate --kineto "$D/small.json.gz" --out "$T/pz.json"
grep -v '"source"' "$T/pz.json" >"$T/gotz" 2>/dev/null
if [ $rc -eq 0 ] && cmp -s "$T/golden" "$T/gotz"; then
	ok "the gzip copy gives the same profile"
else
	nok "calibrate small.json.gz" "exit $rc, or the profile differs from the plain trace's"
fi

run calibrate --kineto "$D/small.json" --out -
if [ $rc -eq 0 ] && grep -q '"strata_profile": 1' "$T/out" && [ "$(grep -c '^wrote' "$T/out")" -eq 0 ]; then
	ok "--out - writes the profile (only) to stdout"
else
	nok "calibrate --out -" "exit $rc; expected the profile JSON alone on stdout"
fi

# ------------------------------------------------------------------ --profile in estimate and plan
EST="estimate --model llama2-7b --gpus 8 --plan tp=8"
iter() { awk '$1 == "iteration" && $2 == "time" { print $3 }' "$T/out"; }
run $EST --cluster dgx-a100-80g
t_default=$(iter)
run $EST --cluster dgx-a100-80g --profile "$T/p.json"
t_profile=$(iter)
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ -n "$t_profile" ] && [ "$t_profile" != "$t_default" ]; then
	ok "estimate --profile on A100s: as is (no note), iteration $t_profile s vs $t_default s with the default curves"
else
	nok "estimate --profile (A100)" "exit $rc, iteration '$t_profile' vs default '$t_default'; expected exit 0, no stderr, a different time"
fi

run $EST --cluster dgx-h100
t_h100=$(iter)
run $EST --cluster dgx-h100 --profile "$T/p.json"
t_h100p=$(iter)
note="strata estimate: note: profile measured on a100-sxm-80g, scaled to h100-sxm-80g by peak ratio"
if [ $rc -eq 0 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -qF "$note" "$T/err" && [ "$t_h100p" != "$t_h100" ]; then
	ok "estimate --profile on H100s: one note line ($(cat "$T/err"))"
else
	nok "estimate --profile (H100)" "exit $rc; expected exit 0 and one stderr line starting '$note'"
fi
if awk -v a="$t_profile" -v h="$t_h100p" 'BEGIN { exit !(h + 0 < a + 0) }'; then
	ok "the scaled profile predicts H100s faster than A100s ($t_h100p s < $t_profile s)"
else
	nok "scaled profile" "H100 $t_h100p s is not below A100 $t_profile s"
fi

run $EST --cluster dgx-h100 --profile "$T/p.json" --json
if [ $rc -eq 0 ] && tr -d ' \n' <"$T/out" | grep -qF "\"profile\":{\"file\":\"$T/p.json\",\"gpu\":\"a100-sxm-80g\",\"scaled_from\":\"a100-sxm-80g\"}"; then
	ok "estimate --json says which profile priced it, and that it was scaled"
else
	nok "estimate --json --profile (H100)" "exit $rc; expected a \"profile\" object with scaled_from a100-sxm-80g"
fi
run sim --model llama2-7b --gpus 8 --plan tp=8 --cluster dgx-a100-80g --profile "$T/p.json" --json
if [ $rc -eq 0 ] && tr -d ' \n' <"$T/out" | grep -qF '"gpu":"a100-sxm-80g","scaled_from":null}'; then
	ok "sim --json on A100s: the profile as measured (scaled_from null)"
else
	nok "sim --json --profile (A100)" "exit $rc; expected a \"profile\" object with scaled_from null"
fi

# the note comes once the input is good: a bad plan with a scaled profile is still one line
run $EST --cluster dgx-h100 --profile "$T/p.json" --plan tp=3
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && ! grep -q "note:" "$T/err"; then
	ok "a bad plan with a scaled profile: exit 2, one line, no note"
else
	nok "estimate --plan tp=3 --profile (H100)" "exit $rc, $(nlines "$T/err") stderr lines; expected 2 and only the error"
fi

run plan --model llama2-7b --cluster dgx-h100 --gpus 8 --gbs 16 --top 3 --profile "$T/p.json"
if [ $rc -eq 0 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -qF "strata plan: note: profile measured on a100-sxm-80g, scaled to h100-sxm-80g" "$T/err"; then
	ok "plan --profile on H100s: one note line"
else
	nok "plan --profile (H100)" "exit $rc; expected exit 0 and one note line on stderr"
fi

# --profile NAME: a profile in a folder of $STRATA_PROFILE_PATH (as under traces/), by its file name
mkdir -p "$T/shipped" && cp "$T/p.json" "$T/shipped/a100-test.json"
STRATA_PROFILE_PATH="$T/shipped"
export STRATA_PROFILE_PATH
run profiles
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q "^a100-test  *a100-sxm-80g .*($T/shipped/a100-test.json)\$" "$T/out"; then
	ok "profiles lists the shipped profile with its GPU and path"
else
	nok "profiles" "exit $rc; expected a line for a100-test"
fi
run $EST --cluster dgx-h100 --profile a100-test
t_named=$(iter)
if [ $rc -eq 0 ] && [ "$t_named" = "$t_h100p" ] && grep -qF "$note" "$T/err"; then
	ok "estimate --profile a100-test: the shipped profile by name, as by path ($t_named s)"
else
	nok "estimate --profile a100-test" "exit $rc, iteration '$t_named' vs '$t_h100p' by path"
fi
run sim --model llama2-7b --gpus 8 --plan tp=8 --cluster dgx-a100-80g --profile a100-test
if [ $rc -eq 0 ] && [ ! -s "$T/err" ]; then ok "sim --profile a100-test"; else nok "sim --profile a100-test" "exit $rc"; fi
run $EST --cluster dgx-a100-80g --profile a100-nope
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "key 'profile': 'a100-nope' is neither an existing file nor a shipped profile" "$T/err"; then
	ok "an unknown profile name: exit 2, one line ($(cat "$T/err"))"
else
	nok "estimate --profile a100-nope" "exit $rc; expected 2, one line naming key 'profile'"
fi
STRATA_PROFILE_PATH="$T/nowhere"
run profiles --json
if [ $rc -eq 0 ] && ! grep -q "a100-test" "$T/out" && grep -q '"profiles"' "$T/out"; then
	ok "profiles --json without the folder: no a100-test"
else
	nok "profiles --json" "exit $rc"
fi
unset STRATA_PROFILE_PATH

run calibrate --kineto "$D/small.json" --out "$T/mygpu.json" --gpu mygpu
if [ $rc -eq 0 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "not a GPU preset" "$T/err" && grep -q '"gpu": "mygpu"' "$T/mygpu.json"; then
	ok "calibrate --gpu mygpu: written, with a note that it cannot be scaled"
else
	nok "calibrate --gpu mygpu" "exit $rc; expected exit 0, one note line and gpu mygpu in the profile"
fi
run $EST --cluster dgx-a100-80g --profile "$T/mygpu.json"
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "key 'gpu'" "$T/err"; then
	ok "a profile for an unknown GPU on A100s: exit 2, one line naming key 'gpu'"
else
	nok "estimate --profile mygpu.json" "exit $rc; expected 2, empty stdout, one stderr line naming key 'gpu'"
fi

# ------------------------------------------------------------------ a GPU without a preset
# the trace's device names the profile's GPU: used as measured where a cluster's gpu.name is that
# name, refused (key 'gpu') on a preset's cluster, which it cannot be scaled to
run calibrate --kineto "$D/unknown_gpu.json" --out "$T/rtx.json"
if [ $rc -eq 0 ] && grep -q '"gpu": "NVIDIA GeForce RTX 4090"' "$T/rtx.json" &&
	grep -q '^gpu  *NVIDIA GeForce RTX 4090: no preset: applies as measured to a cluster whose gpu.name' "$T/out"; then
	ok "a GPU without a preset: the profile is labelled with the trace's device name, and the summary says so"
else
	nok "calibrate unknown_gpu.json" "exit $rc; expected 0 and gpu 'NVIDIA GeForce RTX 4090' in $T/rtx.json and the summary"
fi
run $EST --cluster dgx-a100-80g --profile "$T/rtx.json"
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "key 'gpu'" "$T/err"; then
	ok "that profile on A100s: exit 2, one line naming key 'gpu' (never scaled)"
else
	nok "estimate --profile rtx.json" "exit $rc; expected 2 and one stderr line naming key 'gpu'"
fi

# ------------------------------------------------------------------ bad input
head -c 20000 "$D/small.json" >"$T/truncated.json"
head -c 2000 "$D/small.json.gz" >"$T/truncated.json.gz"
printf '{"traceEvents": [\n  {"ph": "X",, "cat": "kernel"}\n]}\n' >"$T/malformed.json"
printf '{"displayTimeUnit": "ms"}\n' >"$T/foreign.json"
mkdir "$T/ro" && chmod 555 "$T/ro"

# bad DESCRIPTION NEEDLE ARGS...: exit 2, empty stdout, one stderr line containing NEEDLE, no $T/out.json
bad() {
	desc=$1
	needle=$2
	shift 2
	rm -f "$T/out.json"
	run calibrate "$@"
	why=
	[ $rc -eq 2 ] || why="exit $rc, expected 2"
	[ -s "$T/out" ] && why="${why:+$why; }stdout not empty"
	[ "$(nlines "$T/err")" -eq 1 ] || why="${why:+$why; }$(nlines "$T/err") lines on stderr, expected one"
	grep -qF -e "$needle" "$T/err" || why="${why:+$why; }the message does not name '$needle'"
	[ -e "$T/out.json" ] && why="${why:+$why; }$T/out.json was written"
	for _f in "$T"/*.tmp.*; do [ -e "$_f" ] && why="${why:+$why; }a temporary file was left: $_f"; done
	if [ -z "$why" ]; then ok "$desc: exit 2, one line: $(cat "$T/err")"; else nok "$desc" "$why"; fi
}
bad "missing trace" "cannot open" --kineto "$T/nope.json" --out "$T/out.json"
bad "truncated trace" "truncated.json:" --kineto "$T/truncated.json" --out "$T/out.json"
bad "truncated gzip" "truncated" --kineto "$T/truncated.json.gz" --out "$T/out.json"
bad "malformed JSON (line and column)" "malformed.json:2:14: invalid JSON" --kineto "$T/malformed.json" --out "$T/out.json"
bad "not a Kineto trace" "key 'traceEvents'" --kineto "$T/foreign.json" --out "$T/out.json"
bad "a trace without GPU kernels" "no GPU kernels" --kineto "$D/no_kernels.json" --out "$T/out.json"
bad "recorded without shapes" "record_shapes=True" --kineto "$D/no_shapes.json" --out "$T/out.json"
mkdir "$T/empty"
bad "a folder without traces" "cannot read" --kineto "$T/empty" --out "$T/out.json"
bad "no --out" "--kineto and --out are required" --kineto "$D/small.json"
bad "bad --gpus-per-node" "--gpus-per-node" --kineto "$D/small.json" --out "$T/out.json" --gpus-per-node 0
bad "bad --gpu" "--gpu" --kineto "$D/small.json" --out "$T/out.json" --gpu "a b"
bad "unknown option" "--bogus" --kineto "$D/small.json" --out "$T/out.json" --bogus
if [ "$(id -u)" -ne 0 ]; then
	run calibrate --kineto "$D/small.json" --out "$T/ro/p.json"
	if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && [ ! -e "$T/ro/p.json" ]; then
		ok "unwritable --out: exit 2, one line, nothing written"
	else
		nok "calibrate --out in a read-only folder" "exit $rc; expected 2 and one line"
	fi
fi

run calibrate --help
if [ $rc -eq 0 ] && grep -q '^usage: strata calibrate --kineto' "$T/out"; then ok "--help"; else nok "calibrate --help" "exit $rc"; fi

finish_tests
