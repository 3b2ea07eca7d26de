#!/bin/sh
# device_pack.sh: packs what scripts/device_check.sh needs on a lent GPU machine (the `device` tool's
# machine has CUDA and no package registry: nothing can be installed there, issue 18) into .dev/ of the
# source tree, which git ignores through its info/exclude (a worktree's too), so that a run can carry it:
#   .dev/strata        the binary, built here with the cuda backend (configure's "executor (cuda) yes")
#   .dev/lib/          every shared library it needs that is neither the C library's nor CUDA's (the
#                      machine has CUDA 13's runtime, cuBLAS, CUPTI and, in its Python, NCCL:
#                      device_check.sh finds them there)
#   .dev/ompi/usr/     Open MPI's runtime (libraries, components, orted, mpirun, help files) in Debian's
#                      layout under a prefix of its own, relocated at run time by OPAL_PREFIX
# Then it checks the pack as the machine will see it: in a mount namespace where the system's Open MPI
# components and help files are hidden (unshare -m and an empty folder mounted over them), the carried
# binary runs a one-rank step of tiny-gpt as an MPI singleton and under the carried mpirun with 2 ranks.
# Usage, from a build tree whose strata has the cuda backend: scripts/device_pack.sh [STRATA]
# Writes .dev.tar.xz beside .dev/ (git-ignored too; the device tool carries at most 64 MiB with the
# working tree: about 26 MB and 12 MB) and prints the sizes.
set -eu
STRATA=${1:-./strata}
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
D=$SRCDIR/.dev
"$STRATA" run --help 2>&1 | grep -q 'backend cpu|cuda' || { echo "device_pack.sh: $STRATA has no strata run" >&2; exit 2; }
# a strata configured without CUDA has the same --help; its exec/nocuda.c's refusal is in the binary (and
# would be all that comes back from the lent machine)
if grep -q 'built without the cuda backend' "$STRATA"; then
	echo "device_pack.sh: $STRATA was built without the cuda backend (configure --with-cuda=DIR)" >&2
	exit 2
fi
# git's exclude file (in a worktree, .git is a file and info/ is the main repository's); none outside git
excl=$(cd "$SRCDIR" && git rev-parse --git-path info/exclude 2>/dev/null) || excl=
case $excl in '' | /*) ;; *) excl=$SRCDIR/$excl ;; esac
ignore() {
	[ -z "$excl" ] || grep -qx "$1" "$excl" 2>/dev/null || { mkdir -p "$(dirname "$excl")" && echo "$1" >>"$excl"; }
}
rm -rf "$D"
mkdir -p "$D/lib" "$D/ompi/usr/bin" "$D/ompi/usr/lib/x86_64-linux-gnu/openmpi" "$D/ompi/usr/share"
ignore '/.dev/'
cp "$STRATA" "$D/strata"
ompi=/usr/lib/x86_64-linux-gnu/openmpi
cp -rL "$ompi/lib" "$D/ompi/usr/lib/x86_64-linux-gnu/openmpi/"
rm -f "$D"/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib/*java* "$D"/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib/*.a
cp -rL /usr/share/openmpi "$D/ompi/usr/share/"
for b in orted orterun; do cp -L "/usr/bin/$b" "$D/ompi/usr/bin/"; done
ln -sf orterun "$D/ompi/usr/bin/mpirun"
# the libraries of the binary, of Open MPI's components and of its programs, but the C library's
# (the machine's own, newer: Debian 12's binaries run on it) and CUDA's (the machine's, matching its driver)
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libcuda|libcudart|libcupti|libnccl|libcublas|libnvidia)'
for f in "$D/strata" "$D"/ompi/usr/bin/* "$D"/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib/*.so* \
	"$D"/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so; do
	ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
	echo "$name" | grep -Eq "$skip" && continue
	case $path in "$D"/*) continue ;; esac
	[ -e "$D/lib/$name" ] || cp -L "$path" "$D/lib/$name"
done
cat >"$D/env.sh" <<'EOF'
# . .dev/env.sh: the carried libraries and Open MPI, relocated (sourced by scripts/device_check.sh)
DEV=$(cd "$(dirname "${DEV_ENV:-.dev/env.sh}")" && pwd)
export OPAL_PREFIX="$DEV/ompi/usr"
export PATH="$DEV/ompi/usr/bin:$PATH"
export LD_LIBRARY_PATH="$DEV/lib:$DEV/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF
for f in "$D"/ompi/usr/lib/x86_64-linux-gnu/openmpi/lib/*.so*; do rm -f "$D/lib/$(basename "$f")"; done
ignore '/.dev.tar.xz'
tar -C "$SRCDIR" -cf - .dev | xz -T 2 -6 >"$SRCDIR/.dev.tar.xz.tmp" && mv "$SRCDIR/.dev.tar.xz.tmp" "$SRCDIR/.dev.tar.xz"
echo "device_pack.sh: $(du -sh "$D" | cut -f1) in $D ($(ls "$D/lib" | wc -l) libraries), $(du -h "$SRCDIR/.dev.tar.xz" | cut -f1) in .dev.tar.xz (carry it)"

# the check: Open MPI's own files hidden, only the pack's
command -v unshare >/dev/null || { echo "device_pack.sh: no unshare: the pack is not checked" >&2; exit 0; }
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
unshare -m sh -eu -c "
	mount --bind '$empty' '$ompi'
	mount --bind '$empty' /usr/share/openmpi
	cd '$SRCDIR'
	DEV_ENV=.dev/env.sh . .dev/env.sh
	.dev/strata run --model tiny-gpt --plan tp=1,pp=1,dp=1,mbs=1,gbs=2,seq=32 --steps 1 >/dev/null
	mpirun --oversubscribe -np 2 .dev/strata run --model tiny-gpt --plan tp=2,pp=1,dp=1,mbs=1,gbs=2,seq=32 --steps 1 >/dev/null
" && echo "device_pack.sh: the pack runs with the system's Open MPI hidden (singleton and mpirun -np 2)"
