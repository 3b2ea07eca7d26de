#!/bin/sh
# scripts/device_check.sh and device_pack.sh without a GPU: the check ends inside its BUDGET_S when every
# step hangs (each step's timeout cut to what is left, the rest skipped: the lent machine's run has a
# timeout_s of its own, and the files it wrote come back only if the script ends first), and the pack
# refuses a strata built without the cuda backend (whose --help is the same) before packing anything.
# Environment (set by automake): STRATA, SRCDIR. POSIX sh.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=tests/lib.sh
. "$SRCDIR/tests/lib.sh"
start_tests scripts-device

# a pack whose strata hangs (exec: timeout's signal reaches the sleep itself), and a GPU that names itself
mkdir -p "$T/root/.dev" "$T/bin"
printf '#!/bin/sh\nexec sleep 300\n' >"$T/root/.dev/strata"
printf 'export LD_LIBRARY_PATH=/nonexistent\n' >"$T/root/.dev/env.sh"
printf '#!/bin/sh\necho "NVIDIA H100 80GB HBM3"\n' >"$T/bin/nvidia-smi"
chmod +x "$T/root/.dev/strata" "$T/bin/nvidia-smi"
if command -v xz >/dev/null && command -v bash >/dev/null && command -v timeout >/dev/null &&
	tar -C "$T/root" -cf - .dev | xz >"$T/root/.dev.tar.xz"; then
	s=$(date +%s)
	(cd "$T/root" && PATH="$T/bin:$PATH" OUT="$T/dout" BUDGET_S=15 timeout 90 bash "$SRCDIR/scripts/device_check.sh" \
		>"$T/log" 2>&1)
	rc=$? secs=$(($(date +%s) - s))
	if [ "$rc" -ne 124 ] && [ "$secs" -le 40 ] && grep -q '=== tiny-gpt: rc=124' "$T/dout/device.log" &&
		grep -q '=== gpt-1.7b: skipped' "$T/dout/device.log"; then
		ok "device_check.sh: every step hanging, it ends inside BUDGET_S ($secs s), the late steps skipped"
	else nok "device_check.sh: ends inside BUDGET_S" "exit $rc in $secs s: $(grep '^===' "$T/log" | tr '\n' ' ')"; fi
	# the steps' log lines stay in the log: the JSON files that come back hold strata's output alone
	if ! grep -q '===' "$T/dout/real.json" "$T/dout/tiny.jsonl" 2>/dev/null && grep -q '=== tiny-llama' "$T/log"; then
		ok "device_check.sh: the steps' log lines in device.log, not in real.json or tiny.jsonl"
	else nok "device_check.sh: the steps' log lines in device.log only" "$(grep -H '===' "$T/dout"/*.json*)"; fi
else
	echo "# skipped: device_check.sh needs bash, xz and timeout"
fi

# a strata without the cuda backend: refused in one line, nothing packed (the script packs its own tree)
mkdir -p "$T/tree/scripts"
cp "$SRCDIR/scripts/device_pack.sh" "$T/tree/scripts/"
{
	echo '#!/bin/sh'
	echo '# strata was built without the cuda backend: configure found no nvcc'
	echo 'echo "  --backend cpu|cuda"'
} >"$T/nocuda"
chmod +x "$T/nocuda"
timeout 60 sh "$T/tree/scripts/device_pack.sh" "$T/nocuda" >"$T/out2" 2>"$T/err2"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err2")" -eq 1 ] && grep -q 'without the cuda backend' "$T/err2" &&
	[ ! -e "$T/tree/.dev" ]; then ok "device_pack.sh: a strata without the cuda backend refused, nothing packed"
else nok "device_pack.sh: a strata without the cuda backend refused" "exit $rc: $(cat "$T/err2")"; fi

finish_tests
