#!/bin/sh
# `sokhan tokenize` / `sokhan detokenize` against the real Gemma tokenizer:
# ids, --bos, --json, stdin, round trip, and the error statuses.
. "$(dirname "$0")/lib.sh"

json=${SK_TOKENIZER_JSON:-$SK_SRCDIR/../shared/data/gemma3-tokenizer/tokenizer.json}
XDG_CACHE_HOME=$(mktemp -d /tmp/sk_tokcli.XXXXXX)
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT

if [ ! -r "$json" ]; then
	sk_skip "tokenize with tokenizer.json" "no tokenizer.json (set SK_TOKENIZER_JSON)"
	sk_done
	exit $?
fi
dir=$(dirname "$json")

# reference ids from HF tokenizers (tests/fixtures/tokenizer/reference.jsonl, first corpus line)
expect_status 0 "tokenize a directory" $SOKHAN tokenize --model "$dir" "سلام دنیا"
check "ids of Persian text" test "$out" = "17045 41329"
expect_status 0 "tokenize --bos --json" $SOKHAN tokenize --model "$json" --bos --json "Hello world"
check "JSON array with <bos>" test "$out" = "[2, 9259, 1902]"
expect_status 0 "tokenize from stdin" sh -c "printf 'Hello world' | $SOKHAN tokenize --model '$json' -"
check "stdin gives the same ids" test "$out" = "9259 1902"
expect_status 0 "detokenize" $SOKHAN detokenize --model "$json" 2 17045 41329
check "text with <bos>" test "$out" = "<bos>سلام دنیا"
expect_status 0 "detokenize --skip-special" $SOKHAN detokenize --model "$json" --skip-special 2 17045 41329
check "text without <bos>" test "$out" = "سلام دنیا"
expect_status 0 "detokenize ids from stdin" sh -c "echo '[9259, 1902]' | $SOKHAN detokenize --model '$json' -"
check "stdin ids decode" test "$out" = "Hello world"
expect_status 1 "an id out of range is a runtime error" $SOKHAN detokenize --model "$json" 999999999
check "error names the id" sh -c "echo \"\$1\" | grep -q '^sokhan: error: .*999999999'" _ "$err"
expect_status 2 "a non-number id is a usage error" $SOKHAN detokenize --model "$json" 12x
expect_status 2 "tokenize without TEXT is a usage error" $SOKHAN tokenize --model "$json"
expect_status 1 "a missing model is a runtime error" $SOKHAN tokenize --model /nonexistent/tok "x"
sk_done
