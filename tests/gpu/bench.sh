#!/bin/sh
# The inference benchmarks of docs/perf.md on one GPU, each a JSON line:
# E4B shape with random weights (NF4 projections), decode at batch 1 and 4
# (32-token prompts), a 2,048-token prefill, and E2B; then where a decode
# step's time goes (each op timed alone).
#   tests/gpu/bench.sh [OUT_FILE] [N]     (sokhan on PATH: tests/gpu/env.sh; N new tokens, 256)
set -u
out=${1:-/dev/stdout}
n=${2:-256}
run() { echo "# sokhan bench infer $*" >&2; sokhan bench infer --json "$@" >>"$out" || echo "{\"failed\":\"$*\"}" >>"$out"; }
run --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n "$n"
run --random-init e4b --quant nf4 --batch 4 --prompt-len 32 -n "$n"
run --random-init e4b --quant nf4 --batch 1 --prompt-len 2048 -n 4
run --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n "$n" --temp 0.7 --top-p 0.95
run --random-init e2b --quant nf4 --batch 1 --prompt-len 32 -n "$n"
echo "# profile: SK_CUDA_PROFILE=1 sokhan bench infer --random-init e4b --quant nf4 -n 32" >&2
SK_CUDA_PROFILE=1 sokhan bench infer --random-init e4b --quant nf4 --batch 1 --prompt-len 32 -n 32 >&2
