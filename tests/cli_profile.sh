#!/bin/sh
# shellcheck disable=SC2086,SC2012 # fixed argument lists are split on purpose; ls of a folder strata writes
# CLI test: `strata profile` (profiler/, issue 6).
#   - --help works in every build and says how this strata was built for profiling;
#   - bad options, models, plans and output folders exit 2 with one line on stderr, nothing on
#     stdout, and write nothing (they are refused before any GPU work);
#   - a strata built without CUDA says so (exit 2); one built with CUDA on a machine without a
#     usable GPU, or with every GPU hidden (CUDA_VISIBLE_DEVICES=-1), says "no CUDA GPU: <why>"
#     (exit 2) and never crashes; neither leaves a file behind;
#   - where a GPU is present (nvidia-smi lists one) and strata has CUDA: a quick profile, also with
#     a plan's shapes and with --timer events, each loaded by `strata estimate --profile`.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-profile
echo "# strata: $STRATA"

# one_line_error NEEDLE: the last run exited 2, printed nothing on stdout and one line on stderr
# containing NEEDLE (a fixed string). Sets $why.
one_line_error() {
	why=
	[ "$rc" -eq 2 ] || why="exit status $rc, expected 2"
	[ -s "$T/out" ] && why="${why:+$why; }stdout not empty"
	[ "$(nlines "$T/err")" -eq 1 ] || why="${why:+$why; }$(nlines "$T/err") lines on stderr, expected one"
	grep -Fq -e "$1" "$T/err" || why="${why:+$why; }the message does not say '$1'"
	[ -z "$why" ]
}

# nothing_written: no file (profile or temporary) appeared in $T/w
nothing_written() { [ -z "$(ls -A "$T/w")" ]; }

# bad DESCRIPTION NEEDLE ARGS...: strata profile ARGS fails with exit 2 and one line naming NEEDLE
bad() {
	desc=$1
	needle=$2
	shift 2
	run profile "$@"
	if one_line_error "$needle" && nothing_written; then
		ok "$desc: exit 2: $(cat "$T/err")"
	else
		nothing_written || why="${why:+$why; }files left in the output folder: $(ls -A "$T/w" | tr '\n' ' ')"
		nok "$desc" "$why"
	fi
}

mkdir "$T/w"
P=$T/w/p.json

# ------------------------------------------------------------------ help
run profile --help
if [ $rc -eq 0 ] && grep -q '^usage: strata profile' "$T/out" && grep -q '^This strata: built with' "$T/out"; then
	ok "profile --help: exit 0, usage and the build line ($(sed -n 's/^This strata: //p' "$T/out"))"
else
	nok "profile --help" "exit $rc; expected usage and 'This strata: built with...'"
fi
cuda=yes
grep -q '^This strata: built without CUDA' "$T/out" && cuda=no

# ------------------------------------------------------------------ usage and input errors
bad "no --out" "--out is required" --quick
bad "--model without --plan" "--model and --plan go together" --out "$P" --model llama2-7b
bad "--plan without --model" "--model and --plan go together" --out "$P" --plan tp=2
bad "--cluster without --plan" "--cluster only says what --plan is for" --out "$P" --cluster dgx-h100
bad "unknown option" "--bogus" --out "$P" --bogus
bad "positional argument" "unexpected argument 'extra'" --out "$P" extra
bad "--timer other than cupti or events" "--timer" --out "$P" --timer nvtx
bad "--device negative" "--device" --out "$P" --device -1
bad "--device not a number" "--device" --out "$P" --device first
bad "--gpu with a space" "--gpu" --out "$P" --gpu "h100 sxm"
bad "--quick with a value" "--quick" --out "$P" --quick=1
bad "unknown model" "no-such-model" --out "$P" --model no-such-model --plan tp=2
bad "plan tp does not divide the heads" "tp" --out "$P" --model llama2-7b --plan tp=3
bad "plan for a cluster too small" "dp" --out "$P" --model llama2-7b --plan tp=8,pp=4 --cluster dgx-h100
bad "output folder missing" "$T/w/none/p.json" --out "$T/w/none/p.json" --quick

# ------------------------------------------------------------------ without a GPU
if [ $cuda = no ]; then
	bad "profile in a build without CUDA" "strata was built without CUDA;" --out "$P" --quick
	bad "profile with a plan, build without CUDA" "strata was built without CUDA;" --out "$P" --quick \
		--model llama2-7b --plan tp=8,mbs=1
	finish_tests
fi

# every GPU hidden: the runtime finds none, on any machine
CUDA_VISIBLE_DEVICES=-1
export CUDA_VISIBLE_DEVICES
bad "profile with every GPU hidden" "strata profile: no CUDA GPU: " --out "$P" --quick
unset CUDA_VISIBLE_DEVICES

if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
	echo "# no GPU here (nvidia-smi lists none): strata profile must say so"
	bad "profile without a GPU" "strata profile: no CUDA GPU: " --out "$P" --quick
	bad "profile with a plan, without a GPU" "strata profile: no CUDA GPU: " --out "$P" --quick \
		--model llama2-7b --plan tp=8,mbs=1
	finish_tests
fi

# ------------------------------------------------------------------ with a GPU
echo "# GPU: $(nvidia-smi -L | head -1)"
gpu_opt=
run profile --quick --out "$P"
if [ $rc -eq 2 ] && grep -q '^strata profile: no CUDA GPU: ' "$T/err"; then
	# a driver older than the runtime, say: the machine's problem, not strata's
	echo "# skip - nvidia-smi lists a GPU that this strata's CUDA runtime cannot use: $(cat "$T/err")"
	finish_tests
fi
if [ $rc -eq 2 ] && grep -q 'has no preset for GPU' "$T/err"; then
	echo "# this GPU has no strata preset: profiling as --gpu h100-sxm-80g"
	gpu_opt="--gpu h100-sxm-80g"
	run profile --quick --out "$P" $gpu_opt
fi
if [ $rc -eq 0 ] && [ -s "$P" ] && grep -q '^wrote ' "$T/out" && grep -q '^compute  *gemm bf16' "$T/out"; then
	ok "profile --quick: exit 0, a bf16 GEMM table, profile written ($(sed -n 's/^timer *//p' "$T/out"))"
else
	nok "profile --quick" "exit $rc, profile $(wc -c <"$P" 2>/dev/null || echo missing) bytes"
fi
cat "$T/out"
EST="estimate --model llama2-7b --cluster dgx-h100 --gpus 8 --plan tp=8,mbs=1,gbs=64"
run $EST --profile "$P"
if [ $rc -eq 0 ]; then ok "estimate --profile takes the quick profile"; else nok "estimate --profile (quick profile)"; fi

rm -f "$P"
run profile --quick --out "$P" $gpu_opt --model llama2-7b --plan tp=8,mbs=1,gbs=64
if [ $rc -eq 0 ] && [ -s "$P" ] && grep -q '^plan ' "$T/out" && grep -q 'at plan shapes' "$T/out"; then
	ok "profile --quick --model --plan: the plan's shapes are table points"
else
	nok "profile --quick --model --plan" "exit $rc"
fi
run $EST --profile "$P"
if [ $rc -eq 0 ]; then ok "estimate --profile takes the plan profile"; else nok "estimate --profile (plan profile)"; fi

rm -f "$P"
run profile --quick --out "$P" $gpu_opt --timer events
if [ $rc -eq 0 ] && [ -s "$P" ] && grep -q '^timer  *CUDA events (--timer events)' "$T/out"; then
	ok "profile --quick --timer events: timed by CUDA events"
else
	nok "profile --quick --timer events" "exit $rc"
fi
run $EST --profile "$P"
if [ $rc -eq 0 ]; then ok "estimate --profile takes the events profile"; else nok "estimate --profile (events profile)"; fi

finish_tests
