#!/bin/sh
# cli_profile_cpu.sh: `strata profile --cpu` and `strata run --compare` (issue 18, "Numbers that must
# agree"): the profile of this machine is quick, loads as a cluster and a calibration profile, and its
# numbers are physical; a run compared against the simulation of its own program prints every row,
# its JSON has the keys, and on the measured cluster the simulated iteration is of the measured one's
# order (timings on a shared 2-core machine vary too much for a tighter bound in a test: the README
# reports the errors on a quiet machine). Skips (77) without the executor or mpirun; every mpirun
# runs under `timeout`.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests profile_cpu

command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
# mpi NP ARGS...: strata ARGS on NP ranks, at most 240 s
mpi() {
	_n=$1
	shift
	mpi_strata 240 "$_n" "$@"
}

mpi 1 profile --cpu --out "$T/c1.json"
if grep -q "built without the executor" "$T/err"; then
	[ "$rc" -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && [ ! -e "$T/c1.json" ] &&
		echo "ok   - without the executor: one line, exit 2, nothing written"
	echo "SKIP: strata was built without the executor"
	exit 77
fi

# one rank, no transfers: the cluster loads, says so
if [ "$rc" -eq 0 ] && grep -q "one rank: no transfers" "$T/out" && grep -q '"gpus_per_node": 1' "$T/c1.json"; then
	ok "one rank: a cluster of one cpu, no transfers timed"
else nok "one rank: a cluster of one cpu, no transfers timed"; fi

P=tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=64
start=$(date +%s)
mpi 2 profile --cpu --quick --out "$T/c.json" --profile-out "$T/p.json" --model tiny-gpt --plan $P
took=$(($(date +%s) - start))
if [ "$rc" -eq 0 ] && [ "$(grep -c '^wrote ' "$T/out")" -eq 1 ] && grep -q 'gemm fp32' "$T/out" &&
	grep -q 'allreduce intra 2 ranks' "$T/out" && grep -q 'attention fp32' "$T/out" && [ "$took" -lt 120 ]; then
	ok "2 ranks --quick with the plan's shapes: one report, GEMM, attention and all-reduce tables (${took} s)"
else nok "2 ranks --quick with the plan's shapes: one report, GEMM, attention and all-reduce tables (${took} s)"; fi

# the numbers are physical: one core does 0.1 to 500 GFLOP/s in fp32, moves 0.01 to 500 GB/s, and MPI's
# shared-memory latency lies between 10 ns and 10 ms
awk "$FLATTEN" "$T/c.json" >"$T/cflat"
why=$(awk '
	$1 == ".gpus_per_node" { if ($2 != 2) print "gpus_per_node " $2; n++ }
	$1 == ".gpu.name" { if ($2 != "\"cpu\"") print "gpu " $2; n++ }
	$1 == ".gpu.peak_tflops.fp32" { if ($2 < 1e-4 || $2 > 0.5) print "peak " $2; n++ }
	$1 == ".gpu.hbm_gb_per_s" { if ($2 < 0.01 || $2 > 500) print "hbm " $2; n++ }
	$1 == ".intra_node.bandwidth_gb_per_s" { if ($2 < 0.01 || $2 > 500) print "intra " $2; n++ }
	$1 == ".intra_node.latency_us" { if ($2 < 0.01 || $2 > 1e4) print "latency " $2; n++ }
	$1 == ".calibration.what" { n++ }
	END { if (n != 7) print "found " n " of 7 keys" }' "$T/cflat")
if [ -z "$why" ]; then ok "the cluster's numbers are physical and explained"; else nok "the cluster's numbers are physical" "$why"; fi

# both files load where any cluster and profile do
run estimate --model tiny-gpt --cluster "$T/c.json" --profile "$T/p.json" --plan $P --json
if [ "$rc" -eq 0 ] && grep -q '"iteration_time_s"' "$T/out"; then ok "strata estimate loads the cluster and profile"
else nok "strata estimate loads the cluster and profile"; fi

# --compare: every row in the text, the keys in the JSON, the simulated iteration within 4x
mpi 2 run --model tiny-gpt --plan $P --cluster "$T/c.json" --profile "$T/p.json" --compare --steps 3
if [ "$rc" -eq 0 ] && grep -q '^  gemm ' "$T/out" && grep -q '^  other compute ' "$T/out" &&
	grep -q '^  coll dp ' "$T/out" && grep -q '^  iteration ' "$T/out" && grep -q '^     1 ' "$T/out"; then
	ok "run --compare: measured vs simulated rows and memory per rank"
else nok "run --compare: measured vs simulated rows and memory per rank"; fi
mpi 2 run --model tiny-gpt --plan $P --cluster "$T/c.json" --profile "$T/p.json" --compare --steps 3 --json
if awk "$FLATTEN" "$T/out" >"$T/flat" 2>"$T/flaterr"; then
	why=$(awk '
		$1 == ".compare.measured_s.iteration" { m = $2 }
		$1 == ".compare.simulated_s.iteration" { s = $2 }
		$1 ~ /^\.compare\.(measured|simulated)_s\.gemm$/ { if ($2 <= 0) print $1 " " $2 }
		$1 ~ /^\.compare\.memory\[[01]\]\.(heap_peak|rss_peak|simulated_peak)_bytes$/ { if ($2 <= 0) print $1 " " $2; k++ }
		END {
			if (!(m > 0) || !(s > 0)) print "iteration measured " m " simulated " s
			else if (s / m > 4 || m / s > 4) print "simulated " s " s against measured " m " s"
			if (k != 6) print k " memory keys of 6"
		}' "$T/flat")
	if [ "$rc" -eq 0 ] && [ -z "$why" ]; then ok "run --compare --json: the keys, memory per rank, the iteration's order"
	else nok "run --compare --json: the keys, memory per rank, the iteration's order" "$why"; fi
else nok "run --compare --json is one JSON object" "$(cat "$T/flaterr")"; fi
# the kept iteration: the fastest after the first, the one whose time is iteration_time_s and the
# compared iteration; the ranks' run delay in it is a time (>= 0, the most at least the mean)
why=$(awk '
	$1 ~ /^\.iteration_s\[[0-9]+\]$/ { t[n++] = $2 }
	$1 == ".kept_step" { kept = $2 }
	$1 == ".iteration_time_s" { it = $2 }
	$1 == ".compare.measured_s.iteration" { m = $2 }
	$1 == ".compare.run_delay_s.mean" { dm = $2; d++ }
	$1 == ".compare.run_delay_s.max" { dx = $2; d++ }
	END {
		best = 1
		for (i = 2; i < n; i++) if (t[i] < t[best]) best = i
		if (n != 3) print n " iteration times of 3"
		else if (kept != best + 1) print "kept step " kept ", the fastest after the first is " best + 1
		else if (it != t[best] || m != t[best]) print "iteration_time_s " it " compared " m " kept " t[best]
		if (d != 2 || !(dm >= 0) || !(dx >= dm)) print "run delay mean " dm " max " dx
	}' "$T/flat")
if [ -z "$why" ]; then ok "run --compare keeps the fastest iteration after the first, with its run delay"
else nok "run --compare keeps the fastest iteration after the first, with its run delay" "$why"; fi

# bad input: one line, exit 2
bad "--profile-out without --cpu" "--cpu" profile --out "$T/x.json" --profile-out "$T/y.json"
bad "--cpu with --gpu" "--gpu" profile --cpu --out "$T/x.json" --gpu h100-sxm
[ ! -e "$T/x.json" ] && [ ! -e "$T/y.json" ] && ok "a refused profile writes nothing" || nok "a refused profile writes nothing"

finish_tests
