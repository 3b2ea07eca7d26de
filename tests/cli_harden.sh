#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: the hardening defects of issue 20, each checked as a user meets it: a subnormal
# rate (NaN answers with exit 0), a lowering too big for memory, debris after Ctrl-C, control
# characters in echoed names, --out naming an input, and an empty plan space that says why.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-harden
echo "# strata: $STRATA"

echo "# --- 1: every rate and size from a file has a physical floor (a subnormal one made NaN times)"
cluster() { # cluster FILE GPU INTRA NIC HOST: a one-node cluster with these JSON fragments
	printf '{"nodes":1,"gpus_per_node":8,"gpu":%s,"intra_node":{"bandwidth_gb_per_s":%s},' "$2" "$3" >"$1"
	printf '"inter_node":{"nics_per_node":8,"nic_gbit_per_s":%s},"host":%s}\n' "$4" "$5" >>"$1"
}
A100=a100-sxm-80g
GPU='{"memory_gib":80,"hbm_gb_per_s":2039,"peak_tflops":{"bf16":312}}'
HOST='{"memory_gib":1024,"pcie_gb_per_s":25}'
for c in "intra_node.bandwidth_gb_per_s|\"$A100\"|1e-320|200|$HOST" \
	"inter_node.nic_gbit_per_s|\"$A100\"|300|1e-320|$HOST" \
	"host.pcie_gb_per_s|\"$A100\"|300|200|{\"pcie_gb_per_s\":1e-320}" \
	"host.memory_gib|\"$A100\"|300|200|{\"memory_gib\":1e-320}" \
	"gpu.hbm_gb_per_s|{\"memory_gib\":80,\"hbm_gb_per_s\":1e-320,\"peak_tflops\":{\"bf16\":312}}|300|200|$HOST" \
	"gpu.memory_gib|{\"memory_gib\":1e-320,\"hbm_gb_per_s\":2039,\"peak_tflops\":{\"bf16\":312}}|300|200|$HOST" \
	"gpu.peak_tflops.bf16|{\"memory_gib\":80,\"hbm_gb_per_s\":2039,\"peak_tflops\":{\"bf16\":1e-320}}|300|200|$HOST" \
	"gpu.peak_tflops.fp32|{\"memory_gib\":80,\"hbm_gb_per_s\":2039,\"peak_tflops\":{\"bf16\":312,\"fp32\":1e-320}}|300|200|$HOST"; do
	key=${c%%|*}
	rest=${c#*|}
	gpu=${rest%%|*}
	rest=${rest#*|}
	intra=${rest%%|*}
	rest=${rest#*|}
	nic=${rest%%|*}
	cluster "$T/c.json" "$gpu" "$intra" "$nic" "${rest#*|}"
	for sub in estimate sim plan; do
		plan="--plan tp=2,pp=2"
		[ $sub = plan ] && plan="--top 2"
		bad "$sub, subnormal $key" "$T/c.json
key '$key'
physical" $sub --model gpt-1.7b --cluster "$T/c.json" $plan
	done
done
cluster "$T/c.json" "$GPU" 0.001 0.008 "$HOST"
run estimate --model gpt-1.7b --cluster "$T/c.json" --plan tp=2,pp=2 --json
if [ $rc -le 1 ] && grep -q '"iteration_time_s"' "$T/out" && ! grep -qi 'nan\|inf' "$T/out"; then
	ok "the floor itself (1 MB/s links) gives finite times (exit $rc)"
else
	nok "the floor itself (1 MB/s links) gives finite times"
fi

echo "# --- 2: a lowering too big for memory is refused before it starts, and stops at the first failed store"
SIM1="sim --model gpt-1.7b --cluster dgx-a100-80g --plan tp=1,pp=1"
# limited KB ARGS...: strata ARGS under ulimit -v KB, as run() does; sets $ms, the CPU time (user +
# system) strata took, from the subshell's `times` (CPU time: the machine's load does not change it)
limited() {
	_kb=$1
	shift
	cmd="(ulimit -v $_kb; strata $*)"
	(
		ulimit -v "$_kb"
		"$STRATA" "$@" >"$T/out" 2>"$T/err"
		echo $? >"$T/rc"
		times >"$T/times"
	)
	rc=$(cat "$T/rc")
	# the second line: the children's "XmY.YYYs XmY.YYYs"
	ms=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%d", t * 1000 }' "$T/times")
}
# in_time MS DESC: the last limited run took less than MS milliseconds of CPU
in_time() {
	if [ -n "$ms" ] && [ "$ms" -lt "$1" ]; then ok "$2: $ms ms of CPU"; else nok "$2: $ms ms of CPU, limit $1"; fi
}
# 1e9 needs 30 GB of programs: refused on any machine with less (a 16 GB limit makes sure of it), in
# milliseconds; it ran for minutes and was killed for memory. Under 1.5 GB, 5e7 is refused by its
# size; 4e7 passes the estimate (a lower bound) and runs out of memory while lowering: one line and
# exit 2 within a second (carrying on after the first failed store took 5 s here)
# (an ASan build cannot start under any such limit: its shadow memory reserves terabytes of
# address space; .ci/run's sanitizer build skips these)
if (ulimit -v 1500000 && "$STRATA" --version) >/dev/null 2>&1; then
	limited 16000000 $SIM1,gbs=1000000000
	if one_line_error 2 "key 'gbs'
GiB"; then ok "gbs=1e9: refused by size: $(cat "$T/err")"; else nok "gbs=1e9 refused by size" "$why"; fi
	in_time 2000 "gbs=1e9 refused fast"
	limited 1500000 $SIM1,gbs=50000000
	if one_line_error 2 "key 'gbs'
this process may use"; then ok "ulimit -v 1.5 GB, gbs=5e7: refused by size"; else nok "ulimit -v 1.5 GB, gbs=5e7" "$why"; fi
	limited 1500000 $SIM1,gbs=40000000
	if one_line_error 2 "out of memory"; then ok "ulimit -v 1.5 GB, gbs=4e7: out of memory, exit 2"; else nok "ulimit -v 1.5 GB, gbs=4e7" "$why"; fi
	in_time 2500 "ulimit -v 1.5 GB, gbs=4e7: stopped at the first failed store"
else
	echo "skip - ulimit -v not available, or strata cannot start under it (a sanitizer build)"
fi

echo "# --- 3: a fatal signal leaves no temporary file, and strata dies by it"
# interrupted SIG ARGS...: strata ARGS in the background (the signals not ignored: a shell without
# job control ignores SIGINT in background jobs, and a test run under nohup SIGHUP, which strata
# keeps ignored as it should, so perl resets them), SIG after 0.3 s; sets $rc, $left
interrupted() {
	_sig=$1
	shift
	cmd="strata $* (then SIG$_sig)"
	perl -e '$SIG{$_} = "DEFAULT" for qw(INT TERM HUP); exec @ARGV or exit 127' "$STRATA" "$@" >"$T/out" 2>"$T/err" &
	_pid=$!
	sleep 0.3
	kill -s "$_sig" $_pid 2>/dev/null
	wait $_pid
	rc=$?
	left=$(ls "$T/sig" | tr '\n' ' ')
}
if command -v perl >/dev/null 2>&1; then
	mkdir "$T/sig"
	for s in INT:2 TERM:15 HUP:1; do # the numbers are XSI's, the same everywhere
		sig=${s%:*}
		n=${s#*:}
		# a run of ~0.7 s writing a 400 MB trace; if it ended first, a longer one
		for gbs in 1536 6144; do
			interrupted "$sig" sim --model gpt3-175b --cluster dgx-a100-80g --gpus 1024 \
				--plan tp=8,pp=16,gbs=$gbs,sp=1 --every-rank --trace "$T/sig/big.json"
			[ $rc -eq 0 ] || break
			rm -f "$T/sig/big.json"
		done
		if [ $rc -eq $((128 + n)) ] && [ -z "$left" ]; then
			ok "sim --trace, SIG$sig: exit $rc (by the signal), nothing left"
		else
			nok "sim --trace, SIG$sig must die by the signal and leave nothing" "exit $rc, left: $left"
		fi
		rm -f "$T/sig/"*
	done
else
	echo "skip - perl not found: interrupt checks skipped"
fi

echo "# --- 4: control characters in echoed names are replaced (text); JSON escapes them"
printf '{"name":"evil\\nname\\u001b[31m","layers":4,"hidden":256,"heads":4,"vocab":1000}\n' >"$T/evil.json"
cluster "$T/evilc.json" '{"name":"g\u0007pu","memory_gib":80,"hbm_gb_per_s":2039,"peak_tflops":{"bf16":312}}' 300 200 "$HOST"
sed 's/^{/{"name":"cl\\u001bus",/' "$T/evilc.json" >"$T/evilc2.json"
for args in "estimate --plan tp=1" "sim --plan tp=1" "plan --gbs 8 --top 3"; do
	run $args --model "$T/evil.json" --cluster "$T/evilc2.json"
	if [ $rc -eq 0 ] && ! LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$T/out" "$T/err" &&
		grep -q '^model  *evil?name?\[31m\|^model evil?name?\[31m' "$T/out" && grep -q 'cl?us' "$T/out" &&
		grep -q 'g?pu' "$T/out"; then
		ok "$args: names printed with '?' for control characters"
	else
		nok "$args: control characters must not reach the text output"
	fi
done
run estimate --plan tp=1 --model "$T/evil.json" --cluster "$T/evilc2.json" --json
if [ $rc -eq 0 ] && awk "$FLATTEN" "$T/out" >/dev/null && ! LC_ALL=C grep -q "$(printf '[\001-\011\013-\037\177]')" "$T/out"; then
	ok "estimate --json: well-formed, no raw control character"
else
	nok "estimate --json must stay well-formed JSON without raw control characters"
fi
run estimate --plan tp=1 --cluster dgx-a100-80g --model "$T/$(printf 'x\033[31m').json"
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && ! LC_ALL=C grep -q "$(printf '\033')" "$T/err"; then
	ok "an ESC in a missing file's name: one line, no ESC"
else
	nok "an ESC in a file name must not reach the terminal"
fi

echo "# --- 5: an output that names an input (the same file) is refused before anything is written"
cp "$T/evil.json" "$T/m.json"
ln -s m.json "$T/link.json"
cp "$T/m.json" "$T/m.orig"
PLAN8="plan --cluster dgx-a100-80g --gpus 8 --gbs 8"
bad "plan --out = --model" "option '--out'
--model" $PLAN8 --model "$T/m.json" --out "$T/m.json"
bad "plan --out = a link to --model" "option '--out'
--model" $PLAN8 --model "$T/m.json" --out "$T/link.json"
bad "sim --trace = --model" "option '--trace'
--model" sim --cluster dgx-a100-80g --plan tp=1 --model "$T/m.json" --trace "$T/m.json"
run $PLAN8 --model "$T/m.json" --out "$T/p.json"
bad "plan --out = --profile" "option '--out'
--profile" $PLAN8 --model "$T/m.json" --profile "$T/p.json" --out "$T/p.json"
cp "$T/evilc.json" "$T/c.json"
bad "plan --out = --cluster" "option '--out'
--cluster" plan --model gpt-1.7b --cluster "$T/c.json" --gbs 8 --out "$T/c.json"
bad "plot --out = --input" "option '--out'
--input" plot timeline --input "$T/p.json" --out "$T/p.json"
if cmp -s "$T/m.json" "$T/m.orig"; then ok "the model file is untouched"; else nok "the model file was overwritten"; fi

echo "# --- 6: an empty plan space says which constraint emptied it"
run plan --model gpt-1.7b --cluster dgx-a100-80g --gpus 1000000
if [ $rc -eq 1 ] && grep -q "no configuration divides: 1000000 GPUs" "$T/err" && ! grep -q "none fits" "$T/err"; then
	ok "plan --gpus 1000000: exit 1, $(cat "$T/err")"
else
	nok "plan --gpus 1000000 must say that nothing divides, not that none fits"
fi
run plan --model gpt3-175b --cluster dgx-a100-80g --gpus 8 --gbs 8
if [ $rc -eq 1 ] && grep -q "none fits in 80 GiB" "$T/err"; then
	ok "plan gpt3-175b on 8 GPUs: exit 1, none fits"
else
	nok "plan gpt3-175b on 8 GPUs must say that none fits"
fi

echo "# --- 6: garbage after a gzip member is refused (gzread ignored it)"
K=$SRCDIR/tests/data/kineto
{ cat "$K/small.json.gz"; echo garbage; } >"$T/junk.json.gz"
bad "calibrate: garbage after the gzip member" "$T/junk.json.gz
after the end of the gzip stream" calibrate --kineto "$T/junk.json.gz" --out "$T/prof.json"
run calibrate --kineto "$K/small.json.gz" --out "$T/prof.json"
if [ $rc -eq 0 ]; then ok "calibrate: the plain gzip trace still imports"; else nok "calibrate: the gzip fixture must import"; fi

echo "# --- 6: sim --every-rank on a quarter million GPUs: a progress line on stderr, and SIGINT ends it"
EVERY="sim --model gpt-1.7b --cluster dgx-a100-80g --gpus 262144 --plan tp=1,pp=1,gbs=262144 --every-rank --timing"
run $EVERY
# the line shows once setup and events have run for a second (--timing says how long they took)
took=$(sed -n 's/.*setup \([0-9.]*\) s, events \([0-9.]*\) s.*/\1 \2/p' "$T/err" | awk '{ print ($1 + $2 >= 1.2) }')
if [ $rc -ne 0 ]; then
	nok "sim --every-rank on 262144 GPUs must run"
elif [ "$took" != 1 ]; then
	echo "skip - setup and events took under 1.2 s here: no progress line is due"
elif grep -q "$(printf '\r')simulating: [0-9]* events" "$T/err"; then
	ok "sim --every-rank: a progress line on stderr"
else
	nok "sim --every-rank ran over a second without a progress line"
fi
if command -v perl >/dev/null 2>&1; then
	interrupted INT $EVERY
	if [ $rc -eq 130 ] && [ -z "$left" ]; then ok "sim --every-rank, SIGINT: exit 130"; else nok "sim --every-rank, SIGINT" "exit $rc"; fi
fi

finish_tests
