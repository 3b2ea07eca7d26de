#!/bin/sh
# tests/cli_published.sh: measured vs predicted on published throughput of the systems issue 16
# added (tests/data/published_systems.json: Megatron Bridge's 25.11 performance table for DGX-B200,
# DGX-GB200 and DGX-GB300, with DGX-H100 beside them), printed for README as `strata validate`
# reports it. The rows on 256 GPUs of GB200/GB300 NVL72 racks fill the domains in order (72, 72, 72,
# 40; the published table does not say how the racks were used). A report, not a gate on the error: nothing in strata is fitted to these rows. It
# fails when the report is broken: a point neither compared, nor not fitting, nor rejected with a
# reason; a NaN or infinity; rows that do not add up to the bundle's points; a bad exit status.
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
start_tests cli-published

B=$SRCDIR/tests/data/published_systems.json
npoints=$(grep -c '"id":' "$B")
for c in estimate sim; do
	run validate --points "$B" --command "$c"
	echo "# ---- strata validate --command $c"
	sed 's/^/# /' "$T/out"
	bad=$(awk -v n="$npoints" '
		/^id .* measured_s  predicted_s  error_%$/ { inrows = 1; next }
		inrows && NF == 0 { inrows = 0 }
		inrows {
			rows++
			for (i = 1; i <= NF; i++) if (tolower($i) ~ /^[+-]?(nan|inf|infinity)$/) { print "non-finite: " $0; next }
			if ($NF ~ /^[+-][0-9]+\.[0-9]$/ && $(NF - 1) ~ /^[0-9]+\.[0-9]+$/) next
			if ($0 ~ / does not fit \([0-9.]+ GiB > [0-9.]+ GiB\)$/ || $0 ~ / rejected: [^ ]/) next
			print "unexplained row: " $0
		}
		END { if (rows != n) print "rows " rows ", points " n }' "$T/out")
	if [ $rc -eq 0 ] && [ -z "$bad" ] && [ "$npoints" -gt 0 ]; then
		ok "validate --command $c on $npoints published points: every row compared, not fitting or rejected with a reason"
	else
		nok "validate --command $c on the published points" "exit $rc" "$bad"
	fi
	# 256 GPUs of NVL72 racks fill the domains in order (72, 72, 72, 40): priced, not refused
	part=$(grep -E '^mb-gb[23]00-l31-405b' "$T/out" | grep -c -v 'rejected')
	if [ "$part" -eq 2 ]; then ok "validate --command $c prices the 2 rows on 256 GPUs of NVL72 racks"
	else nok "validate --command $c on 256 GPUs of NVL72 racks" "$(grep -E '^mb-gb[23]00-l31-405b' "$T/out")"; fi
done
finish_tests
