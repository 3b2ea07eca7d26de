# shellcheck shell=sh
# tests/lib_accuracy.sh: the preamble shared by the accuracy tests (accuracy_sc21.sh,
# accuracy_vtrain.sh, accuracy_modern.sh). Not a test itself: each test sets SRCDIR, then sources it:
#
#   SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
#   . "$SRCDIR/tests/lib_accuracy.sh"
#   run_validation SET FILE [ARG...]  # skips (77) without the data; runs scripts/validate.sh into $out
#
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. POSIX sh only.

set -u
LC_ALL=C
export LC_ALL

STRATA=${STRATA:-./strata}
VALIDATION=${VALIDATION:-$SRCDIR/../shared/validation}

# run_validation SET FILE [ARG...]: exit 77 (skip) unless $VALIDATION/FILE is readable; run
# `scripts/validate.sh --set SET ARG...`, print its output and keep it in $out; exit 99 if it fails
# or prints no "SUMMARY SET" line
run_validation() {
	if [ ! -r "$VALIDATION/$2" ]; then
		echo "SKIP: validation data not found at $VALIDATION ($2)"
		exit 77
	fi
	set_=$1
	shift 2
	out=$(sh "$SRCDIR/scripts/validate.sh" --strata "$STRATA" --validation "$VALIDATION" --set "$set_" "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	if [ $rc -ne 0 ]; then
		echo "ERROR: scripts/validate.sh exited with status $rc"
		exit 99
	fi
	if ! printf '%s\n' "$out" | awk -v set="$set_" '$1 == "SUMMARY" && $2 == set { found = 1 } END { exit !found }'; then
		echo "ERROR: no SUMMARY line in the output of scripts/validate.sh"
		exit 99
	fi
}
