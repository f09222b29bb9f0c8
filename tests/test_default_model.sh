#!/bin/sh
# Without --model, every command that takes a model uses the default one:
# $SK_DEFAULT_MODEL, else the Gemma 3 270M GGUF in $XDG_CACHE_HOME/sokhan/models.
# Missing, it is a runtime error that names the path looked at and
# data/fetch-model.sh. merge alone insists on --model (its base must be the
# safetensors model the adapter was trained on).
. "$(dirname "$0")/lib.sh"
unset SK_DEFAULT_MODEL
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
HF=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3

# --- an empty cache ---
XDG_CACHE_HOME=$tmp/empty
export XDG_CACHE_HOME
defpath=$tmp/empty/sokhan/models/gemma-3-270m-q4_k_m.gguf
for cmd in "info" "tokenize hi" "detokenize 1" "generate --ids 1,2 -n 1" "logits --ids 1,2 --out $tmp/l.npy" \
	"grad --adapter $HF/ref/adapter_all --ids 1,2 --out $tmp/g.safetensors" "chat" \
	"eval --data $SK_SRCDIR/tests/fixtures/train/tiny.jsonl"; do
	cname=${cmd%% *}
	expect_status 1 "$cname without --model or a default model: a runtime error" sh -c "$SOKHAN $cmd </dev/null"
	check "$cname: the message names the path looked at and data/fetch-model.sh" \
		sh -c "echo \"\$1\" | grep -qF -- '$defpath' && echo \"\$1\" | grep -q 'data/fetch-model.sh'" _ "$err"
done
expect_status 2 "merge without --model is a usage error" $SOKHAN merge --adapter "$HF/ref/adapter_all" --out "$tmp/m"
check "merge says what --model must be" sh -c "echo \"\$1\" | grep -q -- '--model PATH is required'" _ "$err"

# --- a small model under the default name ---
XDG_CACHE_HOME=$tmp/cache
mkdir -p "$XDG_CACHE_HOME/sokhan/models"
cp "$SK_SRCDIR/tests/fixtures/model/gemma3-tiny.gguf" "$XDG_CACHE_HOME/sokhan/models/gemma-3-270m-q4_k_m.gguf"
expect_status 0 "info uses the default model" $SOKHAN info
check "info: the model is the cached one" sh -c "echo \"\$1\" | grep -q '^Model: .*sokhan/models/gemma-3-270m-q4_k_m.gguf'" _ "$out"
expect_status 0 "tokenize uses the default model" $SOKHAN tokenize hi
check "tokenize prints ids" sh -c "echo \"\$1\" | grep -qE '^[0-9]'" _ "$out"
expect_status 0 "detokenize uses the default model" $SOKHAN detokenize 104 105
expect_status 0 "generate uses the default model" $SOKHAN generate --ids 1,2 -n 2 --greedy --print-ids --threads 1 -q
check "generate: two ids" sh -c "test \$(echo \"\$1\" | wc -w) -eq 2" _ "$out"
expect_status 0 "logits uses the default model" $SOKHAN logits --ids 1,2,3 --out "$tmp/l.npy" --threads 1
check "logits: the .npy is written" test -s "$tmp/l.npy"
out=$(printf 'hi\n' | $SOKHAN chat --greedy -n 2 --threads 1 -q 2>"$tmp/err")
check "chat uses the default model" test -n "$out"

# --- $SK_DEFAULT_MODEL names another one (here a Hugging Face directory) ---
SK_DEFAULT_MODEL=$HF
export SK_DEFAULT_MODEL
expect_status 0 "grad uses \$SK_DEFAULT_MODEL" $SOKHAN grad --adapter "$HF/ref/adapter_all" --ids 2,10,20,30 \
	--out "$tmp/g.safetensors" --threads 1
check "grad: the gradients are written" test -s "$tmp/g.safetensors"
expect_status 0 "eval uses \$SK_DEFAULT_MODEL" $SOKHAN eval --data "$SK_SRCDIR/tests/fixtures/train/tiny.jsonl" --threads 1
check "eval prints a loss" sh -c "echo \"\$1\" | grep -q '^loss'" _ "$out"
sk_done
