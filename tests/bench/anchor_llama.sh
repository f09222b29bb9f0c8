#!/bin/sh
# The llama.cpp anchor for `sokhan bench infer`, on one GPU, in one call:
# random-weight GGUFs of the default model's shape (Gemma 3 270M, its
# Q4_K_M tensor types) and of Gemma 3n E4B (Q4_0 projections), built from
# skeletons (tests/bench/random_gguf.py), then llama-bench and sokhan on the
# same files. JSON lines to OUT_DIR/llama.jsonl and OUT_DIR/sokhan.jsonl.
#   tests/bench/anchor_llama.sh LLAMA_BENCH SKEL_270M SKEL_E4B OUT_DIR
# LLAMA_BENCH: llama.cpp's llama-bench built with CUDA (beside the project,
# never part of it). SKEL_270M: `random_gguf.py skeleton` of the real 270M
# file; SKEL_E4B: `random_gguf.py gemma3n tests/fixtures/model/e4b-config
# SKEL_270M ...`. Needs python3 with numpy and gguf, and sokhan on PATH
# (tests/gpu/env.sh).
set -u
[ $# -eq 4 ] || { sed -n '2,14p' "$0"; exit 2; }
llama=$1 s270=$2 se4b=$3 out=$4
top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
tmp=${TMPDIR:-/tmp}/sokhan-anchor-llama
mkdir -p "$tmp"
for m in 270m:"$s270" e4b:"$se4b"; do
	name=${m%%:*} skel=${m#*:}
	g=$tmp/$name.gguf
	python3 "$top/tests/bench/random_gguf.py" build "$skel" "$g" >&2 || exit 1
	# llama.cpp's shared libraries sit beside llama-bench; sokhan keeps its own path
	LD_LIBRARY_PATH="$(dirname "$llama")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$llama" -m "$g" -ngl 99 -fa 1 -p 512,2048 -n 128 -r 3 -o jsonl >>"$out/llama.jsonl" 2>>"$out/llama.err"
	for a in "--batch 1 --prompt-len 32 -n 256" "--batch 1 --prompt-len 512 -n 4" "--batch 4 --prompt-len 32 -n 256"; do
		# shellcheck disable=SC2086
		sokhan bench infer --json --model "$g" $a >>"$out/sokhan.jsonl" 2>>"$out/sokhan.err" ||
			echo "{\"failed\":\"$name $a\"}" >>"$out/sokhan.jsonl"
	done
	rm -f "$g"
done
