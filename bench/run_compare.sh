#!/bin/sh
# bench/run_compare.sh: strata run's measured iteration against the simulation of the same program
# on this machine as `strata profile --cpu` measured it (issue 18, "Numbers that must agree": Time
# and Memory). For each plan: profile on the plan's rank count with its shapes, then run --compare
# (4 steps, the median of steps 2-4). Prints one row per plan: ranks, measured and simulated
# iteration (ms), error, and the largest rank's measured heap and RSS beside the simulated peak (MiB).
# Usage: bench/run_compare.sh [path/to/strata] [model]   (default: ./strata tiny-gpt)
STRATA=${1:-./strata}
MODEL=${2:-tiny-gpt}
[ -x "$STRATA" ] || { echo "usage: $0 path/to/strata [model]" >&2; exit 2; }
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "machine: $(uname -m), $(nproc) cores, $(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-36s %5s %10s %10s %8s %9s %9s %9s\n' plan ranks measured simulated error heap_MiB rss_MiB sim_MiB
for plan in tp=1,pp=1,dp=1 tp=2,pp=1,dp=1 tp=1,pp=2,dp=1 tp=1,pp=1,dp=2 tp=2,pp=1,dp=2 tp=1,pp=2,dp=2 \
	tp=2,pp=2,dp=2; do
	set -- $(echo "$plan" | tr ',=' '  ')
	np=$(($2 * $4 * $6))
	p="$plan,mbs=1,gbs=8,seq=128"
	timeout 300 mpirun --oversubscribe -np "$np" "$STRATA" profile --cpu --model "$MODEL" --plan "$p" \
		--out "$T/c.json" --profile-out "$T/p.json" >/dev/null || { echo "$p: profile failed" >&2; continue; }
	timeout 300 mpirun --oversubscribe -np "$np" "$STRATA" run --model "$MODEL" --plan "$p" --cluster "$T/c.json" \
		--profile "$T/p.json" --compare --steps 4 --json >"$T/out" || { echo "$p: run failed" >&2; continue; }
	tr -d '\n' <"$T/out" | awk -v p="$plan" -v np="$np" '{
		m = $0; sub(/.*"measured_s": \{/, "", m); sub(/\}.*/, "", m); sub(/.*"iteration": /, "", m)
		s = $0; sub(/.*"simulated_s": \{/, "", s); sub(/\}.*/, "", s); sub(/.*"iteration": /, "", s)
		n = split($0, r, "\"heap_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > h) h = v[1] }
		n = split($0, r, "\"rss_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > rs) rs = v[1] }
		n = split($0, r, "\"simulated_peak_bytes\": ")
		for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > sp) sp = v[1] }
		printf "%-36s %5d %10.1f %10.1f %+7.1f%% %9.1f %9.1f %9.1f\n", p, np, 1e3 * m, 1e3 * s, 100 * (s / m - 1),
			h / 1048576, rs / 1048576, sp / 1048576
	}'
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
