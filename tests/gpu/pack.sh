#!/bin/sh
# Packs what a GPU machine needs to run the GPU checks and benchmarks when
# it has the CUDA toolkit but not sokhan's other build dependencies (ICU,
# ncursesw, readline, jansson, OpenBLAS development files): the built
# programs and the shared libraries they load, other than the C library and
# CUDA's own. Run it in a build configured with CUDA, after `make` and
# `make tests/test_cuda tests/test_cuda_backward tests/test_engine`; unpack there with
# tests/gpu/env.sh.
#   tests/gpu/pack.sh [OUT_DIR]     (default: .gpu in the source tree)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/.gpu}
progs="sokhan tests/test_cuda tests/test_cuda_train tests/test_cuda_backward tests/test_engine"
for p in $progs; do
	[ -x "$p" ] || { echo "pack: $p is not built (run make and make $p)" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for p in $progs; do cp "$p" "$stage/bin/" && strip "$stage/bin/$(basename "$p")"; done
# shellcheck disable=SC2086
ldd $progs | awk '/=> \// { print $3 }' | sort -u | while read -r lib; do
	case $(basename "$lib") in
	libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
	libcuda*|libcublas*|libcudart*) ;;
	*) cp -L "$lib" "$stage/lib/" ;;
	esac
done
mkdir -p "$out"
tar -C "$stage" -cf - bin lib | xz -T0 -6 >"$out/bundle.tar.xz"
echo "pack: $(du -h "$out/bundle.tar.xz" | cut -f1) in $out/bundle.tar.xz ($(ls "$stage/lib" | wc -l) libraries)"
