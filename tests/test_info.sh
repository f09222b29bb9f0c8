#!/bin/sh
# `sokhan info` on the model fixtures (tests/fixtures/model/): the numbers
# come from the shapes make_model_fixtures.py wrote (parameter counts by
# class) and from the transformers configs.
. "$(dirname "$0")/lib.sh"
FIX=$SK_SRCDIR/tests/fixtures/model

# has NAME TEXT PATTERN: passes when TEXT has a line matching the grep pattern.
has() {
	if printf '%s\n' "$2" | grep -q -- "$3"; then sk_ok "$1"; else
		sk_not_ok "$1"
		echo "  no line matches: $3" >&2
	fi
}

expect_status 0 "info on the tiny Gemma 3n directory" $SOKHAN info --model "$FIX/gemma3n-tiny"
has "3n: architecture" "$out" "Architecture: *gemma3n (Gemma 3n"
has "3n: two shards" "$out" "Hugging Face directory (2 files)"
has "3n: per-layer FFN sizes" "$out" "FFN size per layer: *48, 48, 32, 32, 32"
has "3n: heads" "$out" "Heads / KV heads / head dim: *2 / 1 / 16"
has "3n: KV sharing" "$out" "KV-shared layers: *2 (layers 3-4; K/V from layer 1 (sliding), 2 (full))"
has "3n: sparsity" "$out" "Activation sparsity: *2 layers (0, 1)"
has "3n: full-attention layers" "$out" "Full-attention layers: *2, 4"
has "3n: eos list" "$out" "eos 1, 106"
has "3n: compute params" "$out" "decoder compute: *45,496  (123 tensors)"
has "3n: embedding params" "$out" "token embedding (tied LM head): *8,192  (1 tensor)"
has "3n: PLE params" "$out" "per-layer embeddings: *5,120  (1 tensor)"
has "3n: unused consumer k/v" "$out" "unused consumer k/v (KV-shared): *2,080  (6 tensors"
has "3n: skipped towers" "$out" "skipped vision/audio towers: *476  (5 tensors)"
has "3n: dtype histogram" "$out" "BF16 *136 tensors *61,364 params"
has "3n: NF4 convention stated" "$out" "4.127 bits/param"
has "3n: shape check clean" "$out" "Shape check: every tensor"
check "3n: no warnings" test -z "$err"

expect_status 0 "info on the variant without consumer k/v" $SOKHAN info --model "$FIX/gemma3n-tiny-nokv"
has "nokv: same compute params" "$out" "decoder compute: *45,496  (123 tensors)"
check "nokv: no unused k/v line" sh -c "! printf '%s\n' \"\$1\" | grep -q 'unused consumer'" _ "$out"

expect_status 0 "info --tensors" $SOKHAN info --model "$FIX/gemma3n-tiny" --tensors
has "tensors: consumer k_proj is unused" "$out" "layers.4.self_attn.k_proj.weight *BF16 *\[16, 32\] *unused-consumer-kv"
has "tensors: vision tower skipped" "$out" "model.vision_tower.timm_model.conv_stem.conv.weight *BF16 *\[8, 3, 3, 3\] *skipped"
has "tensors: PLE table class" "$out" "embed_tokens_per_layer.weight *BF16 *\[128, 40\] *per-layer-embedding"
check "tensors: one line per tensor" sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c '^  model\\.') -eq 136 ]" _ "$out"

expect_status 0 "info on the tiny Gemma 3n GGUF" $SOKHAN info --model "$FIX/gemma3n-tiny.gguf"
has "3n gguf: same compute params" "$out" "decoder compute: *45,496"
has "3n gguf: Q8_0 counted" "$out" "Q8_0 "
has "3n gguf: shape check clean" "$out" "Shape check: every tensor"

expect_status 0 "info on the tiny Gemma 3 file" $SOKHAN info --model "$FIX/gemma3-tiny/model.safetensors"
has "3: architecture" "$out" "Architecture: *gemma3 (Gemma 3"
has "3: linear RoPE scaling" "$out" "RoPE base, global: *1,000,000 (linear scaling x8)"
has "3: period 6" "$out" "Full-attention layers: *5 (one layer in 6)"
has "3: attention scale" "$out" "Attention scale: *0.25"

expect_status 0 "info on the tiny Gemma 3 GGUF" $SOKHAN info --model "$FIX/gemma3-tiny.gguf"
has "3 gguf: norms stored +1" "$out" "stored as 1 + w"

# the full-size E4B shape needs weights; a lone config is a clear error
expect_status 1 "config.json without weights is an error" $SOKHAN info --model "$FIX/e4b-config"
has "config without weights: message" "$err" "^sokhan: error: .*e4b-config: has config.json but no \*.safetensors"
expect_status 1 "missing model" $SOKHAN info --model "$FIX/does-not-exist"
has "missing model: message" "$err" "^sokhan: error: .*does-not-exist: No such file or directory"
expect_status 1 "a file of unknown kind" $SOKHAN info --model "$FIX/make_model_fixtures.py"
has "unknown kind: message" "$err" "not a model (expected a .gguf or .safetensors"
expect_status 2 "a stray argument is a usage error" $SOKHAN info --model "$FIX/gemma3-tiny" extra

tmp=$(mktemp -d /tmp/sk_test_info.XXXXXX)
echo '{}' >"$tmp/tokenizer.json"
expect_status 0 "info on a tokenizer-only directory" $SOKHAN info --model "$tmp"
has "tokenizer only: kind" "$out" "Source: *tokenizer only"
has "tokenizer only: says so" "$out" "only the tokenizer can be used"
rm -f "$tmp/tokenizer.json"
cp "$FIX/gemma3-tiny/model.safetensors" "$tmp/weights.safetensors"
expect_status 0 "info on a lone .safetensors infers the config" $SOKHAN info --model "$tmp/weights.safetensors"
has "inferred: origin" "$out" "Config from: *tensor shapes"
has "inferred: layers" "$out" "Layers: *6$"
has "inferred: warns" "$err" "^sokhan: warning: no config.json"
rm -rf "$tmp"

if [ -n "$SK_DEFAULT_MODEL" ] && [ -f "$SK_DEFAULT_MODEL" ]; then
	expect_status 0 "info on the default model" $SOKHAN info --model "$SK_DEFAULT_MODEL"
	has "default: 18 layers" "$out" "Layers: *18$"
	has "default: 268 M parameters" "$out" "text decoder total: *268,098,176"
	has "default: embedding" "$out" "token embedding (tied LM head): *167,772,160"
else
	sk_skip "info on the default model" "SK_DEFAULT_MODEL is unset"
fi
sk_done
