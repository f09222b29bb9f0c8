#!/bin/sh
# The command-line conventions: help, version, exit statuses, error format.
. "$(dirname "$0")/lib.sh"

expect_status 0 "help exits 0" $SOKHAN --help
check "help lists the commands" sh -c "echo \"\$1\" | grep -q tokenize && echo \"\$1\" | grep -q info" _ "$out"
expect_status 0 "version exits 0" $SOKHAN --version
check "version names the package and backends" sh -c "echo \"\$1\" | grep -q '^sokhan [0-9]' && echo \"\$1\" | grep -q 'CUDA backend'" _ "$out"
expect_status 1 "no command opens the TUI, which refuses to run without a terminal" $SOKHAN
expect_status 2 "unknown command exits 2" $SOKHAN frobnicate
check "unknown command is named" sh -c "echo \"\$1\" | grep -q \"unknown command 'frobnicate'\"" _ "$err"
expect_status 2 "unknown top-level option exits 2" $SOKHAN --frobnicate
for cmd in info tokenize detokenize; do
	expect_status 0 "$cmd --help exits 0" $SOKHAN $cmd --help
	check "$cmd --help shows usage" sh -c "echo \"\$1\" | grep -q \"Usage: sokhan $cmd\"" _ "$out"
	expect_status 2 "$cmd with an unknown option exits 2" $SOKHAN $cmd --no-such-option
	check "$cmd usage error points to --help" sh -c "echo \"\$1\" | grep -q -- \"--help\"" _ "$err"
done
expect_status 1 "a missing model is a runtime error" $SOKHAN info --model /nonexistent/model
check "runtime errors start with 'sokhan: error:'" sh -c "echo \"\$1\" | grep -q '^sokhan: error: .*nonexistent'" _ "$err"
expect_status 2 "an option without its value is a usage error" $SOKHAN info --model
# a model without a chat template (a base model) gets a note; one with a template does not
M_TINY=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
err=$(printf 'hi\n' | $SOKHAN chat --model "$M_TINY" --greedy -n 2 --threads 1 2>&1 >/dev/null)
check "chat: no base-model note for a model with a chat template" sh -c "! echo \"\$1\" | grep -q 'no chat template'" _ "$err"
if [ -n "${SK_DEFAULT_MODEL:-}" ] && [ -f "$SK_DEFAULT_MODEL" ]; then
	err=$(printf 'hi\n' | $SOKHAN chat --model "$SK_DEFAULT_MODEL" --greedy -n 2 --threads 1 2>&1 >/dev/null)
	check "chat: the base default model gets a note" sh -c "echo \"\$1\" | grep -q 'no chat template'" _ "$err"
else
	sk_skip "chat: the base default model gets a note" "no default model"
fi
for cmd in chat tui; do
	expect_status 2 "$cmd --shape with a bad value is a usage error" $SOKHAN $cmd --shape sometimes
	check "$cmd --shape usage error names the choices" sh -c "echo \"\$1\" | grep -q 'auto, on, off'" _ "$err"
	expect_status 2 "$cmd --bidi with a bad value is a usage error" $SOKHAN $cmd --bidi sideways
	check "$cmd --bidi usage error names the choices" sh -c "echo \"\$1\" | grep -q -- \"--bidi: 'sideways' is not one of app, terminal\"" _ "$err"
	expect_status 2 "$cmd: a bad \$SOKHAN_BIDI is a usage error" env SOKHAN_BIDI=sideways $SOKHAN $cmd
	check "$cmd: the message names \$SOKHAN_BIDI" sh -c "echo \"\$1\" | grep -q \"SOKHAN_BIDI: 'sideways'\"" _ "$err"
done
# one parser for the sampling options of chat, tui and generate: the same
# options, limits and messages everywhere
for cmd in chat tui generate; do
	expect_status 0 "$cmd --help" $SOKHAN $cmd --help
	check "$cmd --help lists every sampling option" sh -c "for o in greedy temp top-k top-p min-p repeat-penalty seed; do echo \"\$1\" | grep -q -- \"--\$o \" || exit 1; done" _ "$out"
	expect_status 2 "$cmd --top-p 0 is a usage error" $SOKHAN $cmd --top-p 0
	check "$cmd --top-p 0: the message" sh -c "echo \"\$1\" | grep -q -- '--top-p must be above 0'" _ "$err"
	expect_status 2 "$cmd --repeat-penalty 0 is a usage error" $SOKHAN $cmd --repeat-penalty 0
	expect_status 2 "$cmd --temp above 100 is a usage error" $SOKHAN $cmd --temperature 101
	expect_status 2 "$cmd --greedy with --min-p is a usage error" $SOKHAN $cmd --greedy --min-p 0.1
	check "$cmd --greedy with --min-p: the message" sh -c "echo \"\$1\" | grep -q -- '--greedy cannot be combined'" _ "$err"
done
# logits and grad share their opening: the same checks in the same order
for cmd in logits grad; do
	expect_status 2 "$cmd: a stray argument is a usage error" $SOKHAN $cmd --adapter x --ids 2 --out x extra
	check "$cmd: the stray argument is named" sh -c "echo \"\$1\" | grep -q \"unexpected argument 'extra'\"" _ "$err"
	expect_status 2 "$cmd: --ids is required" $SOKHAN $cmd --adapter x --out x
	check "$cmd: the message names --ids" sh -c "echo \"\$1\" | grep -q -- '--ids LIST is required'" _ "$err"
	expect_status 2 "$cmd: --out is required" $SOKHAN $cmd --adapter x --ids 2
	check "$cmd: the message names --out" sh -c "echo \"\$1\" | grep -q -- \"--out FILE is required\"" _ "$err"
done
expect_status 2 "grad: --adapter is required" $SOKHAN grad --ids 2 --out x
expect_status 2 "grad: a bad --mask-prefix" $SOKHAN grad --adapter x --ids 2 --out x --mask-prefix -1
sk_done
