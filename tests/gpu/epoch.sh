#!/bin/sh
# A whole epoch of `sokhan train --recipe seed` on the GPU, end to end: a
# random-weight E4B GGUF built from its skeleton (tests/bench/random_gguf.py),
# a dataset of the seed's size and length distribution
# (tests/bench/make_seed_like.py), then the run under a time limit. When the
# limit cuts the run, metrics.jsonl still gives the rate and the steps done.
#   tests/gpu/epoch.sh OUT_DIR SKEL_E4B [SECONDS] [TRAIN_OPTION...]
# Needs python3 with numpy and gguf (PYTHONPATH) and sokhan on PATH
# (tests/gpu/env.sh).
set -u
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
out=$1 skel=$2 secs=${3:-300}
shift 2
[ $# -gt 0 ] && shift
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=${TMPDIR:-/tmp}/sokhan-epoch
rm -rf "$tmp"
mkdir -p "$tmp" "$out"
python3 "$top/tests/bench/make_seed_like.py" >"$tmp/seed-like.jsonl" || exit 1
python3 "$top/tests/bench/random_gguf.py" build "$skel" "$tmp/e4b.gguf" >&2 || exit 1
s=$(date +%s)
timeout "$secs" sokhan train --model "$tmp/e4b.gguf" --data "$tmp/seed-like.jsonl" --recipe seed \
	--save-every 0 --out "$tmp/run" "$@" >"$out/train.out" 2>"$out/train.err"
rc=$?
echo "{\"rc\":$rc,\"seconds\":$(($(date +%s) - s)),\"limit\":$secs}" >"$out/epoch.json"
cp "$tmp/run/metrics.jsonl" "$out/" 2>/dev/null
rm -f "$tmp/e4b.gguf"
cat "$out/epoch.json"
