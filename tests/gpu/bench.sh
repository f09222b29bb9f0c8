#!/bin/sh
# The inference benchmarks of docs/perf.md on one GPU, each a JSON line:
# E4B shape with random weights (NF4 projections), decode at batch 1 and 4
# (32-token prompts, 256 new tokens), a 2,048-token prefill, and E2B.
#   tests/gpu/bench.sh [OUT_FILE]     (sokhan on PATH: tests/gpu/env.sh)
set -u
out=${1:-/dev/stdout}
run() { echo "# sokhan bench infer $*" >&2; sokhan bench infer --json "$@" >>"$out" || echo "{\"failed\":\"$*\"}" >>"$out"; }
run --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n 256
run --random-init e4b --quant nf4 --batch 4 --prompt-len 32 -n 256
run --random-init e4b --quant nf4 --batch 1 --prompt-len 2048 -n 4
run --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n 256 --temp 0.7 --top-p 0.95
run --random-init e2b --quant nf4 --batch 1 --prompt-len 32 -n 256
# where the time of a decode step goes: each op timed alone
echo "# profile: SK_CUDA_PROFILE=1 sokhan bench infer --random-init e4b --quant nf4 -n 32" >&2
SK_CUDA_PROFILE=1 sokhan bench infer --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n 32 >&2
