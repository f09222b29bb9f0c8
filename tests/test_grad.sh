#!/bin/sh
# `sokhan grad`: argument checks, then on the tiny Gemma 3n fixture with the
# multimodal-key adapter: the printed loss and the written gradients (under
# the adapter file's own key names) equal PEFT's (ref/grad_all.safetensors,
# made by tests/fixtures/make_fixtures.py), compared with tests/sk_compare.
. "$(dirname "$0")/lib.sh"
T3N=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
tmp=$(mktemp -d /tmp/sk_test_grad.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if $SOKHAN grad --help 2>&1 | grep -q "unknown command"; then
	sk_skip "grad" "the command is not in this build"
	sk_done
	exit $?
fi

IDS=2,225,49,314,134,180,261,265,296,43,53,121,157,294,4,275,240,204,186,344,60,198,323,21
expect_status 0 "grad --help" $SOKHAN grad --help
expect_status 2 "grad needs --adapter" $SOKHAN grad --model "$T3N" --ids 2,3 --out "$tmp/g.safetensors"
expect_status 2 "grad needs --out" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" --ids 2,3
expect_status 2 "grad: a bad --mask-prefix" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" \
	--ids 2,3 --mask-prefix x --out "$tmp/g.safetensors"
expect_status 1 "grad: nothing to predict" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" \
	--ids 2,3 --mask-prefix 2 --out "$tmp/g.safetensors"
expect_status 0 "grad on tiny-gemma3n" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all_mm" \
	--ids "$IDS" --mask-prefix 5 --out "$tmp/g.safetensors"
loss=$(printf '%s\n' "$out" | sed -n 's/^loss = //p')

# the loss against the manifest's, then every gradient tensor (the reference
# names lack the multimodal layout's language_model.)
want=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["adapters"][0]["grad"]["loss"])' "$T3N/ref/manifest.json")
check "loss equals PEFT's (rel 1e-4)" awk -v a="$loss" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(a != "" && d < 1e-4 * b) }'
grads_close() {
	$SK_COMPARE --each --rel-l2 1e-3 --rename base_model.model.model.=base_model.model.model.language_model. \
		"$tmp/g.safetensors" "$T3N/ref/grad_all.safetensors" >&2
}
check "gradients equal PEFT's (rel L2 < 1e-3 each)" grads_close
sk_done
