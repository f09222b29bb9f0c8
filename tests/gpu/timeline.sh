#!/bin/sh
# A timeline of one sokhan command under Nsight Systems, kept as its text
# summaries (time per kernel, per CUDA API call): where a run's GPU time
# goes when the per-op profile (SK_CUDA_PROFILE=1, every op synchronised)
# would hide it. Needs nsys on PATH.
#   tests/gpu/timeline.sh OUT_PREFIX SOKHAN_ARGS...
set -u
[ $# -ge 2 ] || { sed -n '2,6p' "$0"; exit 2; }
out=$1
shift
command -v nsys >/dev/null || { echo "timeline: nsys is not installed" >&2; exit 1; }
nsys profile --trace=cuda --stats=true --force-overwrite=true -o "$out" sokhan "$@"
rc=$?
rm -f "$out.nsys-rep" "$out.sqlite"
exit $rc
