# shellcheck shell=sh
# tests/lib.sh: the harness shared by the golden CLI tests (cli_basic.sh, cli_badinput.sh,
# cli_plan.sh). Not a test itself: each test sets SRCDIR, then sources it and starts:
#
#   SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
#   . "$SRCDIR/tests/lib.sh"
#   start_tests NAME        # checks $STRATA, makes the temporary folder $T
#   ... run / ok / nok ...
#   finish_tests            # prints "# N passed, N failed" and exits 0 or 1
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only.

set -u
LC_ALL=C
export LC_ALL

STRATA=${STRATA:-./strata}

npass=0
nfail=0
cmd=
rc=0

# start_tests NAME: exit 99 unless $STRATA is an executable; create the temporary folder $T
# (strata-NAME.XXXXXX), removed on exit (made writable first: a test may chmod files in it)
start_tests() {
	if [ ! -x "$STRATA" ]; then
		echo "ERROR: strata binary not found or not executable: $STRATA"
		exit 99
	fi
	T=$(mktemp -d "${TMPDIR:-/tmp}/strata-$1.XXXXXX") || { echo "ERROR: mktemp -d failed"; exit 99; }
	trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
	trap 'exit 1' HUP INT TERM
}

# finish_tests: the closing line; exit 1 if any check failed, else 0
finish_tests() {
	echo "# $npass passed, $nfail failed"
	[ $nfail -eq 0 ] || exit 1
	exit 0
}

# run ARGS...: run strata, stdout to $T/out, stderr to $T/err, status in $rc
run() {
	cmd="strata $*"
	"$STRATA" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
ok() {
	npass=$((npass + 1))
	echo "ok   - $1"
}
# nok DESCRIPTION [DETAIL...]: a failed check; names the last command and shows its output
nok() {
	nfail=$((nfail + 1))
	echo "FAIL - $1"
	shift
	echo "       command: $cmd"
	for _l in "$@"; do printf '%s\n' "$_l" | sed 's/^/       /'; done
	if [ "$rc" -ge 128 ]; then echo "       CRASH: killed by signal $((rc - 128))"; fi
	if [ -s "$T/err" ]; then sed -n '1,3s/^/       stderr: /p' "$T/err"; fi
	if [ -s "$T/out" ]; then sed -n '1,3s/^/       stdout: /p' "$T/out"; fi
}
# mpi_strata SECONDS NP ARGS...: strata ARGS on NP ranks under mpirun (Open MPI refuses root unless
# told, and more ranks than cores unless --oversubscribe), stdout to $T/out, stderr to $T/err,
# status in $rc; a hang past SECONDS fails (124)
mpi_strata() {
	OMPI_ALLOW_RUN_AS_ROOT=1
	OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
	_s=$1
	_np=$2
	shift 2
	cmd="mpirun -np $_np strata $*"
	# an ASan build (issue 20): Open MPI's own leaks are suppressed (tests/lsan-mpi.supp says why)
	ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}fast_unwind_on_malloc=0" \
		LSAN_OPTIONS="${LSAN_OPTIONS:-}${LSAN_OPTIONS:+:}suppressions=$SRCDIR/tests/lsan-mpi.supp:print_suppressions=0" \
		timeout "$_s" mpirun --oversubscribe -np "$_np" "$STRATA" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
# need_executor: skips the test (77) without mpirun or timeout, or where strata was built without the
# executor (the tests that run it under mpirun)
need_executor() {
	command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
	command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
	run run --model tiny-gpt --plan tp=1,pp=1,dp=1,gbs=1,seq=8 --steps 1
	if grep -q "built without the executor" "$T/err"; then echo "SKIP: strata was built without the executor"; exit 77; fi
}
# nlines FILE: the number of lines, counting an unterminated last line
nlines() { awk 'END { print NR }' "$1"; }

# one_line_error STATUS NEEDLES: checks the last run: exit STATUS, empty stdout, one stderr line
# containing every needle (newline-separated; fixed strings, or an ERE after "re:"). Sets $why.
one_line_error() {
	want=$1
	why=
	[ "$rc" -eq "$want" ] || why="exit status $rc, expected $want"
	[ -s "$T/out" ] && why="${why:+$why; }stdout not empty ($(wc -c <"$T/out") bytes)"
	n=$(nlines "$T/err")
	if [ "$n" -ne 1 ] || [ "$(wc -l <"$T/err")" -ne 1 ]; then why="${why:+$why; }$n lines on stderr, expected exactly one"; fi
	set -f
	_ifs=$IFS
	IFS='
'
	for needle in $2; do
		case $needle in
		re:*) grep -Eq -e "${needle#re:}" "$T/err" || why="${why:+$why; }the message does not match /${needle#re:}/" ;;
		*) grep -Fq -e "$needle" "$T/err" || why="${why:+$why; }the message does not name '$needle'" ;;
		esac
	done
	IFS=$_ifs
	set +f
	[ -z "$why" ]
}

# bad DESCRIPTION NEEDLES ARGS...: strata ARGS must fail with exit 2 and one line naming NEEDLES
bad() {
	desc=$1
	needles=$2
	shift 2
	run "$@"
	if one_line_error 2 "$needles"; then ok "$desc: exit 2, one line: $(cat "$T/err")"; else nok "$desc" "$why"; fi
}

# JSON flattener: one line "PATH VALUE" per scalar (PATH like .plans[0].spec, VALUE as printed);
# empty containers print {} or []. Exits 2 on anything that is not one well-formed JSON value.
# Use: awk "$FLATTEN" FILE
# shellcheck disable=SC2016,SC2034 # an awk program in single quotes, used by the tests that source this file
FLATTEN='
function path(   i, p) {
	p = ""
	for (i = 1; i <= sp; i++) p = p (typ[i] == "o" ? "." key[i] : "[" idx[i] "]")
	return p
}
function bad(msg) { print "not JSON: " msg " at line " NR ": " t > "/dev/stderr"; err = 1; exit 2 }
function after_value() { if (sp == 0) done = 1; else want = "sep" }
function scalar(t) { return t ~ /^"/ || t ~ /^-?[0-9]/ || t == "true" || t == "false" || t == "null" }
function handle(t) {
	if (done) bad("trailing data")
	if (want == "value") {
		if (t == "{") { typ[++sp] = "o"; want = "key_or_close" }
		else if (t == "[") { typ[++sp] = "a"; idx[sp] = 0; want = "value_or_close" }
		else if (scalar(t)) { print path() " " t; after_value() }
		else bad("value expected")
	} else if (want == "value_or_close") {
		if (t == "]") { sp--; print path() " []"; after_value() }
		else { want = "value"; handle(t) }
	} else if (want == "key_or_close" || want == "key") {
		if (t == "}" && want == "key_or_close") { sp--; print path() " {}"; after_value() }
		else if (t ~ /^"/) { key[sp] = substr(t, 2, length(t) - 2); want = "colon" }
		else bad("key expected")
	} else if (want == "colon") {
		if (t == ":") want = "value"; else bad("colon expected")
	} else if (want == "sep") {
		if (t == ",") { if (typ[sp] == "a") { idx[sp]++; want = "value" } else want = "key" }
		else if ((t == "}" && typ[sp] == "o") || (t == "]" && typ[sp] == "a")) { sp--; after_value() }
		else bad("comma or close expected")
	}
}
BEGIN { want = "value"; sp = 0; done = 0; err = 0 }
{
	s = $0
	while (length(s) > 0) {
		if (match(s, /^[ \t\r]+/)) { s = substr(s, RLENGTH + 1); continue }
		if (match(s, /^"([^"\\]|\\.)*"/) || match(s, /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/) ||
		    match(s, /^(true|false|null)/)) t = substr(s, 1, RLENGTH)
		else { t = substr(s, 1, 1); RLENGTH = 1 }
		s = substr(s, RLENGTH + 1)
		handle(t)
	}
}
END { if (err) exit 2; if (!done) { print "not JSON: truncated" > "/dev/stderr"; exit 2 } }
'

# skip_without_executor: exits 77 (skip) where mpirun or timeout is missing or strata was built
# without the executor
skip_without_executor() {
	command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
	command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
	run run --model tiny-gpt --plan tp=1,pp=1,dp=1,gbs=1,seq=8 --steps 1
	if grep -q "built without the executor" "$T/err"; then echo "SKIP: strata was built without the executor"; exit 77; fi
}
# run_checked NP DESCRIPTION ARGS...: strata run ARGS --steps 2 --check --json on NP ranks (at most 180 s),
# then check_within DESCRIPTION
run_checked() {
	_np=$1 _what=$2
	shift 2
	mpi_strata 180 "$_np" run "$@" --steps 2 --check --json
	check_within "$_what"
}
# reference_on_0 DESCRIPTION ROW RANK COPIES: after check_within of a --check --compare --json run, the heap
# high-water of the memory report's row ROW (world rank RANK) is at least COPIES x the model's fp32 bytes below rank
# 0's, which alone builds and trains the single-rank reference (exec/check.c; the others keep its tensor table)
reference_on_0() {
	_h0=$(awk '$1 == ".compare.memory[0].heap_peak_bytes" { print $2 }' "$T/flat")
	_hr=$(awk -v k="$2" -v want="$3" '$1 == ".compare.memory[" k "].rank" { r = $2 }
		$1 == ".compare.memory[" k "].heap_peak_bytes" { h = $2 } END { if (r == want) print h }' "$T/flat")
	_p=$(awk '$1 == ".params" { print $2 }' "$T/flat")
	if awk -v a="$_hr" -v b="$_h0" -v p="$_p" -v c="$4" 'BEGIN { exit !(a > 0 && p > 0 && a + c * 4 * p < b) }'; then
		ok "$1 (heap of rank $3 $_hr bytes, of rank 0 $_h0)"
	else nok "$1" "rank $3 $_hr, rank 0 $_h0, params $_p"; fi
}
# check_within DESCRIPTION: $T/out is one JSON object (strata run --check --json) whose check is within
# tests/cli_run.sh's tolerance (it says why): the loss within 1e-5, each tensor's gradients within 1e-3
# of its largest reference gradient plus 1e-9
check_within() {
	if ! awk "$FLATTEN" "$T/out" >"$T/flat" 2>"$T/flaterr"; then
		nok "$1: stdout is one JSON object" "$(cat "$T/flaterr")"
		return
	fi
	_bad=$(awk '
		$1 == ".check.loss_max_diff" { if ($2 + 0 > 1e-5) print "loss differs by " $2 }
		$1 ~ /^\.check\.max_diff\./ { n = substr($1, 16); d[n] = $2 + 0 }
		$1 ~ /^\.check\.max_abs_ref\./ { n = substr($1, 19); r[n] = $2 + 0 }
		END {
			k = 0
			for (n in d) { k++; if (d[n] > 1e-3 * r[n] + 1e-9) print n " differs by " d[n] " (largest " r[n] ")" }
			if (k < 10) print "only " k " tensors compared"
		}' "$T/flat")
	if [ "$rc" -eq 0 ] && [ -z "$_bad" ] && grep -q '^\.loss\[1\] ' "$T/flat"; then ok "$1"; else nok "$1" "$_bad"; fi
}
