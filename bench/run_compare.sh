#!/bin/sh
# bench/run_compare.sh: strata run's measured iteration against the simulation of the same program
# on this machine as `strata profile --cpu` measured it (issue 18, "Numbers that must agree": Time
# and Memory). For each plan: profile on the plan's rank count with its shapes, then run --compare
# (STEPS steps, default 20; the run keeps its fastest iteration after the first, and the profile the
# fastest of its timing windows: on a shared machine the minimum estimates the machine the other
# processes leave undisturbed, as Google Benchmark's repetitions and hyperfine's min do). Prints one
# row per plan: ranks, measured and simulated iteration (ms), error, the most one rank of the measured
# iteration waited for a core (the kernel's run delay, ms), the largest rank's measured heap and RSS
# beside the simulated peak (MiB), and what else the machine did meanwhile: the 1-minute load
# average at the row's start, and the CPU seconds other processes took and the hypervisor stole
# (/proc/stat's steal) per second of the row, in cores (proc(5)), so a reader can see a disturbed row.
#
# Reproducibility on a shared machine. Linux groups processes by session (autogroup, on here:
# /proc/sys/kernel/sched_autogroup_enabled) and shares the CPU between the groups before nice counts
# inside a group (sched(7), "The autogroup feature"), so every other session's build or fuzzer, even
# at nice 19, takes a full group's share beside strata's ranks (on this 2-core machine under load 10,
# one rank's 240 ms iteration took 0.9-1.2 s). The benchmark therefore runs in a session of its own
# whose autogroup nice is NICE (default -20, the highest; sched(7): the autogroup's nice sets the
# group's weight), which needs root (CAP_SYS_NICE); NICE=0, or no permission, runs at the ordinary
# share and says so on stderr. Other sessions still get some CPU (the "others" column), so a row's
# ranks can still wait for a core: delay_ms shows how much. Ranks are bound to cores (mpirun --bind-to core) when there are no more ranks than
# cores, and OpenBLAS runs one thread per rank (the executor asks for it too).
# Usage: [NICE=-20] [STEPS=20] bench/run_compare.sh [path/to/strata] [model]   (default: ./strata tiny-gpt)
STRATA=${1:-./strata}
MODEL=${2:-tiny-gpt}
NICE=${NICE:--20}
STEPS=${STEPS:-20}
[ -x "$STRATA" ] || { echo "usage: $0 path/to/strata [model]" >&2; exit 2; }
case $NICE$STEPS in *[!0-9-]*) echo "$0: NICE and STEPS must be integers" >&2; exit 2 ;; esac
if [ -z "$STRATA_BENCH_SESSION" ]; then # once, in a session (and so an autogroup) of its own
	STRATA_BENCH_SESSION=1
	export STRATA_BENCH_SESSION
	exec setsid "$0" "$@"
fi
if [ "$NICE" != 0 ] && ! echo "$NICE" 2>/dev/null >/proc/self/autogroup; then
	echo "note: cannot set this session's autogroup nice to $NICE (needs root): ordinary share" >&2
fi
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OPENBLAS_NUM_THREADS
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CORES=$(nproc)
HZ=$(getconf CLK_TCK)
echo "machine: $(uname -m), $CORES cores, $(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); session: $(cat /proc/self/autogroup 2>/dev/null)"
echo "steps: $STEPS (measured: the fastest after the first)"
printf '%-16s %5s %9s %9s %8s %8s %8s %8s %8s %6s %6s %5s\n' plan ranks measured simulated error delay_ms \
	heap_MiB rss_MiB sim_MiB load others steal
# cpu_ticks: the machine's busy and stolen ticks, this shell's children's CPU ticks (times: in this
# shell, not in a command substitution's subshell, which has no children) and the time, into $ticks
cpu_ticks() {
	times >"$T/times"
	ticks="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat) $(awk -v hz="$HZ" 'NR == 2 {
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += 60 * a[1] + a[2] }
		printf "%d", s * hz }' "$T/times") $(date +%s.%N)"
}
for plan in tp=1,pp=1,dp=1 tp=2,pp=1,dp=1 tp=1,pp=2,dp=1 tp=1,pp=1,dp=2 tp=2,pp=1,dp=2 tp=1,pp=2,dp=2 \
	tp=2,pp=2,dp=2; do
	set -- $(echo "$plan" | tr ',=' '  ')
	np=$(($2 * $4 * $6))
	p="$plan,mbs=1,gbs=8,seq=128"
	if [ "$np" -le "$CORES" ]; then bind="--bind-to core"; else bind="--oversubscribe --bind-to none"; fi
	load=$(cut -d' ' -f1 /proc/loadavg)
	cpu_ticks
	before=$ticks
	timeout 300 mpirun $bind -np "$np" "$STRATA" profile --cpu --model "$MODEL" --plan "$p" \
		--out "$T/c.json" --profile-out "$T/p.json" >/dev/null || { echo "$p: profile failed" >&2; continue; }
	timeout 300 mpirun $bind -np "$np" "$STRATA" run --model "$MODEL" --plan "$p" --cluster "$T/c.json" \
		--profile "$T/p.json" --compare --steps "$STEPS" --json >"$T/out" || { echo "$p: run failed" >&2; continue; }
	cpu_ticks
	after=$ticks
	tr -d '\n' <"$T/out" | awk -v p="$plan" -v np="$np" -v load="$load" -v hz="$HZ" -v b="$before" -v a="$after" '{
		split(b, x, " "); split(a, y, " "); sec = y[4] - x[4]
		others = ((y[1] - x[1]) - (y[3] - x[3])) / hz / sec; stolen = (y[2] - x[2]) / hz / sec
		m = $0; sub(/.*"measured_s": \{/, "", m); sub(/\}.*/, "", m); sub(/.*"iteration": /, "", m)
		s = $0; sub(/.*"simulated_s": \{/, "", s); sub(/\}.*/, "", s); sub(/.*"iteration": /, "", s)
		n = split($0, r, "\"heap_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > h) h = v[1] }
		n = split($0, r, "\"rss_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > rs) rs = v[1] }
		n = split($0, r, "\"simulated_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > sp) sp = v[1] }
		d = $0; sub(/.*"run_delay_s": \{[^}]*"max": /, "", d); sub(/\}.*/, "", d)
		printf "%-16s %5d %9.1f %9.1f %+7.1f%% %8.1f %8.1f %8.1f %8.1f %6.2f %6.2f %5.2f\n", p, np, 1e3 * m, 1e3 * s,
			100 * (s / m - 1), 1e3 * d, h / 1048576, rs / 1048576, sp / 1048576, load, others, stolen
	}'
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(delay_ms: the most a rank of the measured iteration waited for a core (schedstat's run delay); load:"
echo " 1-minute load average at the row's start; others, steal: CPU that other processes used and the"
echo " hypervisor stole during the row, in cores)"
