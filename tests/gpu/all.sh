#!/bin/sh
# Every GPU check and benchmark of docs/perf.md in one go, most important
# first, on a machine with the bundle (tests/gpu/pack.sh): the parity
# checks and their sanitizer runs; the training benchmark with the options
# off and on (SK_TRAIN_RECOMPUTE_ALL=1, SK_CUDA_GATED_BWD=0, SK_CUDA_HEAD_PASSES=0, SK_CUDA_MLP_FUSED=0, SK_CUDA_LORA_GA=0, SK_CUDA_ALTUP_ONE_PASS=0, SK_CUDA_ATTN_BF16=0, SK_CUDA_ATTN_SPANS=0, SK_CUDA_LORA_DX_FOLD=0, SK_CUDA_KEEP_B=0, SK_CUDA_ATTN_TF32=0, SK_CUDA_FOLD_XT=0,
# SK_CUDA_WCACHE=0, SK_CUDA_PDL=0, SK_CUDA_LORA_BWD=0, SK_CUDA_GEMM_TUNE=1,
# SK_CUDA_LORA_FOLD=0, --vary) and its profiles; E4B
# decode and prefill (SK_CUDA_PDL=0, SK_CUDA_NF4_Q8=0, SK_CUDA_TILED=0); the rest of
# tests/gpu/bench.sh; the llama.cpp anchor when
# LLAMA_DIR holds llama-bench, gguf-py and the two skeletons (see
# tests/bench/anchor_llama.sh); with EPOCH_SKEL naming the E4B skeleton
# (tests/bench/random_gguf.py gemma3n ...) and gguf on PYTHONPATH, a seed-sized
# epoch cut at 70 s, at the defaults and with the kept inputs in bf16 at a
# whole step a pass. A step starts only while SECONDS (default
# 560) are not used up. Everything lands in OUT_DIR/all.tar.gz (one file),
# with a summary in OUT_DIR/summary.txt.
#   tests/gpu/all.sh OUT_DIR [SECONDS]
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: tests/gpu/all.sh OUT_DIR [SECONDS]}
budget=${2:-560}
work=${TMPDIR:-/tmp}/sokhan-gpu-all
rm -rf "$work"
mkdir -p "$work" "$out"
t0=$(date +%s)
env_sh="$top/tests/gpu/env.sh"
left() { echo $((budget - ($(date +%s) - t0))); }
# step NAME NEEDS TIMEOUT COMMAND...: runs when NEEDS seconds are left
step() {
	name=$1 needs=$2 limit=$3
	shift 3
	if [ "$(left)" -lt "$needs" ]; then
		echo "$name: not run (time)" >>"$work/summary.txt"
		return
	fi
	s=$(date +%s)
	timeout "$limit" "$env_sh" "$@" >"$work/$name.out" 2>"$work/$name.err"
	echo "$name: rc $? in $(($(date +%s) - s)) s" >>"$work/summary.txt"
	tar -C "$work" -czf "$out/all.tar.gz" . 2>/dev/null
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$work/gpu.txt" 2>&1
# the workloads are word lists on purpose (split into arguments below)
# shellcheck disable=SC2086
E4B="--random-init e4b --quant nf4"
DEC="bench infer --json $E4B --batch 1 --prompt-len 32 -n 256"
PRE="bench infer --json $E4B --batch 1 --prompt-len 2048 -n 4"
TRN="bench train --json $E4B --batch 2 --seq 512 --grad-ckpt"
CTX4K="bench infer --json $E4B --batch 1 --prompt-len 4000 -n 96"
# the programs of an earlier commit, for a before/after in the same call
base=
if [ -f "$top/.gpu/sokhan-base.xz" ]; then
	base=${TMPDIR:-/tmp}/sokhan-base
	xz -dc "$top/.gpu/sokhan-base.xz" >"$base" && chmod +x "$base"
fi
# shellcheck disable=SC2086
{
step check 150 150 env SK_SANITIZE=no SK_TEST_LOGDIR="$work/check-logs" sh "$top/tests/gpu/check.sh"
step sanitize 100 110 env SK_SANITIZE=only SK_TEST_LOGDIR="$work/sanitize-logs" sh "$top/tests/gpu/check.sh"
# training first (its issue is the open one), then decoding
step train 60 50 sokhan $TRN
step train_vary 60 50 env SK_TRAIN_TIMING=1 sokhan $TRN --seq 320 --vary
# the defaults built after run 14 turned off one at a time: every product of a checkpointed layer
# computed again (no kept outputs), the gated GELU's backward apart from gate's and up's, AltUp
# predict's backward over a row several times, the LM head's chunks one op at a time; the
# tuning (now with split-k variants of long thin products); then the kernel parts at the defaults
step train_recompute_all 60 50 env SK_TRAIN_RECOMPUTE_ALL=1 sokhan $TRN
step train_no_gated_bwd 60 50 env SK_CUDA_GATED_BWD=0 sokhan $TRN
step train_altup_general 60 50 env SK_CUDA_ALTUP_ONE_PASS=0 sokhan $TRN
step train_no_head_passes 60 50 env SK_CUDA_HEAD_PASSES=0 sokhan $TRN
step train_tune_split 60 50 env SK_CUDA_GEMM_TUNE=1 sokhan $TRN
step train_mlp_apart 60 50 env SK_CUDA_MLP_FUSED=0 sokhan $TRN
step train_lora_ga_off 60 50 env SK_CUDA_LORA_GA=0 sokhan $TRN
step profile_train_parts 60 50 env SK_CUDA_PROFILE=kernels sokhan $TRN
# run 14's defaults off (bf16 attention products, a pass's sequences in one attention call),
# fixed and at varied lengths; the defaults since run 13 turned off one at a time (the LoRA branch's rank-r dx as rows of the dx product, the kept B columns),
# then run 12's (TF32 and grouped attention products, the one-pass [x | t], the weight cache) and
# run 11's (programmatic dependent launches, the shared LoRA backward)
step train_attn_tf32 60 50 env SK_CUDA_ATTN_BF16=0 sokhan $TRN
step train_vary_attn_tf32 60 50 env SK_CUDA_ATTN_BF16=0 sokhan $TRN --seq 320 --vary
step train_no_spans 60 50 env SK_CUDA_ATTN_SPANS=0 sokhan $TRN
# the kept layer inputs in bf16 (opt-in): half their memory
step train_keep_bf16 60 50 env SK_TRAIN_KEEP_BF16=1 sokhan $TRN
step train_vary_no_spans 60 50 env SK_CUDA_ATTN_SPANS=0 sokhan $TRN --seq 320 --vary
step train_no_lora_dx_fold 60 50 env SK_CUDA_LORA_DX_FOLD=0 sokhan $TRN
step train_no_keep_b 60 50 env SK_CUDA_KEEP_B=0 sokhan $TRN
step train_run13_off 60 50 env SK_CUDA_LORA_DX_FOLD=0 SK_CUDA_KEEP_B=0 sokhan $TRN
step train_no_tf32 60 50 env SK_CUDA_ATTN_TF32=0 sokhan $TRN
step train_no_fold_xt 60 50 env SK_CUDA_FOLD_XT=0 sokhan $TRN
step train_no_wcache 60 50 env SK_CUDA_WCACHE=0 sokhan $TRN
step train_run12_off 60 50 env SK_CUDA_ATTN_TF32=0 SK_CUDA_ATTN_GROUPED=0 SK_CUDA_FOLD_XT=0 SK_CUDA_WCACHE=0 sokhan $TRN
step train_nopdl 60 50 env SK_CUDA_PDL=0 sokhan $TRN
step train_no_lora_bwd 60 50 env SK_CUDA_LORA_BWD=0 sokhan $TRN
# each product class's algorithm timed (opt-in), at fixed and at varied lengths
step train_gemm_tune 60 50 env SK_CUDA_GEMM_TUNE=1 sokhan $TRN
step train_vary_gemm_tune 60 50 env SK_CUDA_GEMM_TUNE=1 sokhan $TRN --seq 320 --vary
# where the time goes: the host's split (SK_TRAIN_TIMING) and the kernel parts
step train_fixed_timing 60 50 env SK_TRAIN_TIMING=1 sokhan $TRN
# a seed-sized epoch (tests/gpu/epoch.sh), the rate from the progress line and metrics.jsonl
if [ -n "${EPOCH_SKEL:-}" ]; then
	step epoch 100 100 sh "$top/tests/gpu/epoch.sh" "$work/epoch" "$EPOCH_SKEL" 70
	step epoch_keep_bf16_m3000 100 100 env SK_TRAIN_KEEP_BF16=1 sh "$top/tests/gpu/epoch.sh" "$work/epoch_keep" \
		"$EPOCH_SKEL" 70 --merge-tokens 3000
fi
step profile_train_vary 60 50 env SK_CUDA_PROFILE=kernels sokhan $TRN --seq 320 --vary
step train_unfolded 60 50 env SK_CUDA_LORA_FOLD=0 sokhan $TRN
step train_tiled 60 50 env SK_CUDA_ATTN_GEMM=0 sokhan $TRN
step profile_train 60 50 env SK_CUDA_PROFILE=1 sokhan $TRN
step decode 40 30 sokhan $DEC
[ -n "$base" ] && step decode_base 40 30 "$base" $DEC
step decode_nopdl 40 30 env SK_CUDA_PDL=0 sokhan $DEC
step decode_fp32 40 30 env SK_CUDA_NF4_Q8=0 sokhan $DEC
step b4 40 30 sokhan bench infer --json $E4B --batch 4 --prompt-len 32 -n 256
step prefill 40 30 sokhan $PRE
step ctx4k 40 35 sokhan $CTX4K
step profile_decode 40 30 env SK_CUDA_PROFILE=1 sokhan bench infer $E4B --batch 1 --prompt-len 32 -n 32
}
if [ -n "${LLAMA_DIR:-}" ] && [ -x "$LLAMA_DIR/llama-bench" ]; then
	step anchor_llama 100 150 env PYTHONPATH="$LLAMA_DIR/gguf-py" \
		sh "$top/tests/bench/anchor_llama.sh" "$LLAMA_DIR/llama-bench" "$LLAMA_DIR/skel-270m.gguf" \
		"$LLAMA_DIR/skel-e4b.gguf" "$work/anchor"
fi
# shellcheck disable=SC2086
{
step bench 110 100 sh "$top/tests/gpu/bench.sh" "$work/bench.jsonl" 256
step prefill_untiled 40 30 env SK_CUDA_TILED=0 sokhan $PRE
step train_untiled 60 50 env SK_CUDA_TILED=0 sokhan $TRN
step profile_prefill 40 30 env SK_CUDA_PROFILE=1 sokhan $PRE
}
tar -C "$work" -czf "$out/all.tar.gz" .
cp "$work/summary.txt" "$out/summary.txt"
cat "$work/summary.txt"
