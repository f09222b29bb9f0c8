#!/bin/sh
# The training benchmarks of docs/perf.md on one GPU, each a JSON line:
# QLoRA of the E4B shape (random weights, NF4 base, LoRA r 8 on the seven
# projections, 8-bit AdamW) at batch 2 x 512 with and without gradient
# checkpointing, 8 x 512 and 4 x 2,048; then the transformers + PEFT anchor
# on the same workloads when torch and peft are there.
#   tests/gpu/bench_train.sh [OUT_FILE]     (sokhan on PATH: tests/gpu/env.sh)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-/dev/stdout}
run() { echo "# sokhan bench train $*" >&2; sokhan bench train --json "$@" >>"$out" || echo "{\"failed\":\"train $*\"}" >>"$out"; }
run --random-init e4b --quant nf4 --batch 2 --seq 512 --grad-ckpt
run --random-init e4b --quant nf4 --batch 2 --seq 512 --no-grad-ckpt
run --random-init e4b --quant nf4 --batch 8 --seq 512 --grad-ckpt
run --random-init e4b --quant nf4 --batch 4 --seq 2048 --grad-ckpt
if python3 -c "import torch, transformers, peft" 2>/dev/null; then
	echo "# transformers + PEFT: tests/bench/anchor_hf.py --train 2x512 2x512:nockpt" >&2
	PYTHONUNBUFFERED=1 python3 "$top/tests/bench/anchor_hf.py" --shape e4b --batch --train 2x512 2x512:nockpt \
		2>/dev/null >>"$out" || echo '{"failed":"anchor_hf --train"}' >>"$out"
fi
