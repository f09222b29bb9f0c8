#!/bin/sh
# The CPU backend on each instruction set this machine has, forced down by
# the environment: SK_NO_AVX512=1 (AVX2 maddubs integer kernels, no VNNI)
# and SK_NO_AVX2=1 (the portable C kernels and the fp32 fallbacks): the op
# tests, and the default model against transformers with its integer
# tolerance (test_gemma3_270m; skipped there without the model, as in its
# own run). tests/test_q8 compares every instruction set's kernels directly.
. "$(dirname "$0")/lib.sh"

for sw in SK_NO_AVX512 SK_NO_AVX2; do
	for t in test_q8 test_ops test_gemma3_270m; do
		if [ ! -x "./tests/$t" ]; then
			sk_skip "$t with $sw=1" "tests/$t is not built"
			continue
		fi
		out=$(env "$sw=1" "./tests/$t" 2>&1)
		if [ $? -eq 0 ]; then
			sk_ok "$t with $sw=1"
		else
			sk_not_ok "$t with $sw=1"
			printf '%s\n' "$out" | grep -E "^not ok|check failed" | head -20 >&2
		fi
	done
done
sk_done
