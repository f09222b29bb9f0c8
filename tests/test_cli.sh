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
done
sk_done
