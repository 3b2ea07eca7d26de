#!/bin/sh
# scripts/gallery.sh: regenerate the README's gallery, one small PNG per `strata plot` kind, in
# doc/gallery/, from built-in presets:
#
#   strategies, breakdown  strata plan --model gpt3-175b --cluster dgx-a100-80g --gpus 1024 --json
#   memory                 strata estimate --model gpt3-175b --cluster dgx-a100-80g --gpus 64
#                            --plan tp=8,pp=8,gbs=64,sp=1,recompute=selective --json
#   scaling, hardware      strata compare --model llama3-70b --clusters dgx-a100-80g,dgx-h100,dgx-h200
#                            --gpus 64,128,256,512 --gbs 512 --price-per-gpu-hour 1.8,2.99,3.79 --json
#                            (illustrative prices in $ per GPU-hour); if this strata has no working
#                            `compare`, the hand-written tests/data/plot/compare.json instead
#   timeline               strata sim --model gpt3-175b --cluster dgx-a100-80g --gpus 64
#                            --plan tp=8,pp=4,dp=2,gbs=16,sp=1,recompute=selective,zero=1 --trace
#   accuracy               scripts/validate.sh --set all --csv, when the validation data is there
#                            (../shared/validation); else tests/data/plot/accuracy.csv
#
#   scripts/gallery.sh [--strata PATH] [--out DIR]
#
# Defaults: --strata ./strata if it exists, else $STRATA; --out <source root>/doc/gallery. Only the
# PNGs are kept (the .gp and .dat are made in a temporary folder). Needs gnuplot. POSIX sh.

set -u
LC_ALL=C
export LC_ALL

die() {
	echo "gallery.sh: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd) || die "cannot find the script's folder"
srcroot=$(cd "$here/.." && pwd) || die "cannot find the source root"
strata=""
out=$srcroot/doc/gallery
while [ $# -gt 0 ]; do
	case $1 in
	--strata) [ $# -ge 2 ] || die "--strata needs a value"; strata=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
	-h | --help) sed -n '2,22s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
done
if [ -z "$strata" ]; then
	if [ -x ./strata ] && [ ! -d ./strata ]; then strata=./strata; else strata=${STRATA:-}; fi
fi
if [ -z "$strata" ] || [ ! -x "$strata" ]; then die "no strata binary: pass --strata PATH or set STRATA"; fi
case $strata in /*) ;; *) strata=$(pwd)/$strata ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-gallery.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; exit 130' INT TERM
mkdir -p "$out" || die "cannot create $out"
data=$srcroot/tests/data/plot

# plot KIND INPUT [OPTIONS...]: draw $tmp/KIND.png and copy it to $out
plot() {
	kind=$1
	input=$2
	shift 2
	"$strata" plot "$kind" --input "$input" --out "$tmp/$kind.png" "$@" >/dev/null || die "strata plot $kind failed"
	cp "$tmp/$kind.png" "$out/$kind.png" || die "cannot write $out/$kind.png"
	echo "wrote $out/$kind.png"
}

"$strata" plan --model gpt3-175b --cluster dgx-a100-80g --gpus 1024 --json >"$tmp/plan.json" ||
	die "strata plan failed"
plot strategies "$tmp/plan.json"
plot breakdown "$tmp/plan.json" --top 6

# exit 0 (fits) or 1 (does not fit) both print the estimate
"$strata" estimate --model gpt3-175b --cluster dgx-a100-80g --gpus 64 \
	--plan tp=8,pp=8,gbs=64,sp=1,recompute=selective --json >"$tmp/estimate.json"
[ -s "$tmp/estimate.json" ] || die "strata estimate failed"
plot memory "$tmp/estimate.json"

"$strata" sim --model gpt3-175b --cluster dgx-a100-80g --gpus 64 \
	--plan tp=8,pp=4,dp=2,gbs=16,sp=1,recompute=selective,zero=1 --trace "$tmp/trace.json" >/dev/null ||
	die "strata sim failed"
plot timeline "$tmp/trace.json"

if "$strata" compare --model llama3-70b --clusters dgx-a100-80g,dgx-h100,dgx-h200 --gpus 64,128,256,512 \
	--gbs 512 --price-per-gpu-hour 1.8,2.99,3.79 --json >"$tmp/compare.json" 2>/dev/null; then
	compare=$tmp/compare.json
else
	echo "note: strata compare is not available; using the hand-written $data/compare.json"
	compare=$data/compare.json
fi
plot scaling "$compare"
plot hardware "$compare"

if [ -d "$srcroot/../shared/validation" ]; then
	sh "$here/validate.sh" --strata "$strata" --validation "$srcroot/../shared/validation" --set all \
		--csv "$tmp/accuracy.csv" >/dev/null || die "validate.sh failed"
	plot accuracy "$tmp/accuracy.csv"
else
	echo "note: no validation data at $srcroot/../shared/validation; using $data/accuracy.csv"
	plot accuracy "$data/accuracy.csv"
fi
