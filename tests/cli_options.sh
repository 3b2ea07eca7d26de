#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: the options and inputs the commands share (src/cli/cli.c) behave the same in
# every command that takes them:
#   - a bad shared option (--gpus, --gbs, --seq, --dtype, --gpu, a flag given a value) is refused
#     with the same line, under each command's name, exit 2 and nothing on stdout;
#   - each command names the options it needs when one is missing;
#   - of several bad inputs every command names the same one first: the model, then the cluster,
#     then the profile, then the plan (hybrid and operator-level plans alike);
#   - a profile scaled to another GPU is noted once, under the command's name, when the input is good;
#   - --help prints the command's usage on stdout, exit 0.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
start_tests cli-options

PROF=$SRCDIR/tests/data/profile/a100_test.json
echo "# strata: $STRATA"

# refused NAME LINE ARGS...: strata ARGS exits 2 with nothing on stdout and exactly the stderr line
# "strata NAME: LINE" (a LINE ending in " ..." is the start of the line)
refused() {
	name=$1
	line=$2
	shift 2
	run "$@"
	got=$(cat "$T/err")
	case $line in *" ...")
		line=${line%" ..."}
		want="strata $name: $line"
		got=$(printf '%s' "$got" | cut -c 1-${#want})
		;;
	esac
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$got" = "strata $name: $line" ] &&
		[ "$(nlines "$T/err")" -eq 1 ]; then
		ok "$cmd: $line"
	else
		nok "$cmd" "exit $rc (want 2), want the one line 'strata $name: $line'"
	fi
}

# an operator-level plan for the estimate and sim of one
run plan --search ilp --model gpt-18.4b --cluster dgx-a100-80g --gpus 8 --gbs 8 --mbs 1 --max-stages 1 --out "$T/ilp.json"
if [ $rc -ne 0 ] || [ ! -s "$T/ilp.json" ]; then
	nok "an operator-level plan to test with" "exit $rc"
	finish_tests
fi

E="--model llama2-7b --cluster dgx-a100-80g"
I="--model gpt-18.4b --cluster dgx-a100-80g"

echo "# --- a bad shared option: the same line from every command that takes it"
G="option '--gpus': 0 is out of range 1..1048576"
refused estimate "$G" estimate $E --gpus 0 --plan tp=8
refused estimate "$G" estimate $I --gpus 0 --plan "$T/ilp.json"
refused sim "$G" sim $E --gpus 0 --plan tp=8
refused sim "$G" sim $I --gpus 0 --plan "$T/ilp.json"
refused plan "$G" plan $E --gpus 0
refused plan "$G" plan --search ilp $E --gpus 0
refused compare "$G" compare --model llama2-7b --clusters dgx-a100-80g --gpus 8,0
# searched OPTION VALUE LINE: the three searches refuse --OPTION VALUE with LINE
searched() {
	refused plan "$3" plan $E "--$1" "$2"
	refused plan "$3" plan --search ilp $E "--$1" "$2"
	refused compare "$3" compare --model llama2-7b --clusters dgx-a100-80g "--$1" "$2"
}
searched gbs 0 "option '--gbs': 0 is out of range 1..1073741824"
searched seq -1 "option '--seq': -1 is out of range 1..16777216"
searched dtype int4 "option '--dtype': 'int4' is not one of fp32, tf32, fp16, bf16, fp8, mxfp8, nvfp4"
line="option '--gpu': 'h100 sxm' is not a GPU name (1 to 47 printable characters, no spaces)"
refused calibrate "$line" calibrate --kineto "$T/none.json" --out "$T/p.json" --gpu "h100 sxm"
refused profile "$line" profile --out "$T/p.json" --gpu "h100 sxm"
for c in estimate sim plan compare models clusters profiles validate; do
	refused $c "option '--json' takes no value" $c --json=1
done
refused plan "option '--json' takes no value" plan --search ilp --json=1
refused estimate "--graph goes with an operator-level plan (strata plan --search ilp --out)" \
	estimate $E --plan tp=8 --graph "$SRCDIR/tests/data/graph_unet.json"
refused sim "--graph goes with an operator-level plan (strata plan --search ilp --out)" \
	sim $E --plan tp=8 --graph "$SRCDIR/tests/data/graph_unet.json"
refused plan "unknown option '--graph' (see --help)" plan $E --graph "$SRCDIR/tests/data/graph_unet.json"

echo "# --- what each command needs"
refused estimate "--model, --cluster and --plan are required (see --help)" estimate --model llama2-7b
refused sim "--model, --cluster and --plan are required (see --help)" sim --cluster dgx-a100-80g --gpus 0
refused estimate "--model (or --graph), --cluster and --plan are required (see --help)" estimate --plan "$T/ilp.json"
refused sim "--model (or --graph), --cluster and --plan are required (see --help)" sim --plan "$T/ilp.json"
refused plan "--model and --cluster are required (see --help)" plan --model llama2-7b --gpus 0
refused plan "--model (or --graph) and --cluster are required (see --help)" plan --search ilp --gpus 0
refused compare "--model and --clusters are required (see --help)" compare --model llama2-7b
refused calibrate "--kineto and --out are required (see --help)" calibrate --out "$T/p.json"
refused plot "--input and --out are required (see --help)" plot memory --out "$T/m.png"
refused profile "--out is required (see --help)" profile --quick
refused validate "--points is required (see --help)" validate --command sim

echo "# --- several bad inputs: the model is named first, then the cluster, the profile, the plan"
M="key 'model': 'nosuch' is neither a preset (see strata models) nor an existing file"
C="key 'cluster': 'nosuch' is neither a preset (see strata clusters) nor an existing file"
P="key 'profile': 'nosuch' is neither an existing file nor a shipped profile (see strata profiles)"
for c in estimate sim; do
	refused $c "$M" $c --model nosuch --cluster nosuch --profile nosuch --plan tp=8,foo=1
	refused $c "$M" $c --model nosuch --cluster nosuch --profile nosuch --plan "$T/ilp.json"
	refused $c "$C" $c --model llama2-7b --cluster nosuch --profile nosuch --plan tp=8,foo=1
	refused $c "$C" $c --model gpt-18.4b --cluster nosuch --profile nosuch --plan "$T/ilp.json"
	refused $c "$P" $c $E --profile nosuch --plan tp=8,foo=1
	refused $c "$P" $c $I --profile nosuch --plan "$T/ilp.json"
	refused $c "key 'foo': unknown plan key ..." $c $E --profile "$PROF" --plan tp=8,foo=1
done
refused plan "$M" plan --model nosuch --cluster nosuch --profile nosuch
refused plan "$M" plan --search ilp --model nosuch --cluster nosuch --profile nosuch
refused compare "$M" compare --model nosuch --clusters nosuch --profile nosuch
refused plan "$C" plan --model llama2-7b --cluster nosuch --profile nosuch
refused plan "$C" plan --search ilp --model llama2-7b --cluster nosuch --profile nosuch
refused plan "$P" plan $E --profile nosuch
refused plan "$P" plan --search ilp $E --profile nosuch
refused compare "$P" compare --model llama2-7b --clusters nosuch --profile nosuch

echo "# --- notes under the command's name: where a plan file came from, then the scaled profile"
NOTE="note: profile measured on a100-sxm-80g, scaled to h100-sxm-80g by peak ratio"
ORIGIN="note: the plan was made for cluster dgx-a100-80g, not"
run plan $E --gpus 16 --gbs 64 --out "$T/hybrid.json"
H="--model llama2-7b --cluster dgx-h100 --gpus 16 --profile $PROF"
HI="--model gpt-18.4b --cluster dgx-h100 --gpus 8 --profile $PROF"
for c in "1|estimate $H --plan tp=8" "1|sim $H --plan tp=8" "1|plan $H --gbs 64 --top 1" \
	"1|plan --search ilp $HI --gbs 8 --mbs 1 --max-stages 1" "2|estimate $H --plan $T/hybrid.json" \
	"2|sim $H --plan $T/hybrid.json" \
	"2|estimate $HI --plan $T/ilp.json" "2|sim $HI --plan $T/ilp.json"; do
	n=${c%%|*}
	c=${c#*|}
	name=${c%% *}
	run $c
	if [ $rc -eq 0 ] && [ -s "$T/out" ] && [ "$(nlines "$T/err")" -eq "$n" ] &&
		{ [ "$n" -eq 1 ] || head -n 1 "$T/err" | grep -q "^strata $name: $ORIGIN"; } &&
		tail -n 1 "$T/err" | grep -q "^strata $name: $NOTE"; then
		ok "$cmd: $n line(s), the last '$(tail -n 1 "$T/err" | cut -c 1-60)...'"
	else
		nok "$cmd" "exit $rc (want 0), want $n stderr line(s) ending with 'strata $name: $NOTE ...'"
	fi
done

echo "# --- --help: the command's usage on stdout"
for c in estimate sim plan compare plot calibrate profile models clusters profiles validate "plan --search ilp"; do
	run $c --help
	if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && head -n 1 "$T/out" | grep -q "^usage: strata $c "; then
		ok "strata $c --help"
	else
		nok "strata $c --help" "exit $rc (want 0), want 'usage: strata $c ...' on stdout and nothing on stderr"
	fi
done

finish_tests
