#!/bin/sh
# `sokhan chat` with the tiny Gemma 3n: one message per line from a pipe,
# and the readline REPL driven through tmux (send-keys, capture-pane).
. "$(dirname "$0")/lib.sh"
# the visual strings below are unshaped; shaping has its own case at the end
SOKHAN_SHAPE=off
export SOKHAN_SHAPE
M=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
# One thread: the tiny model needs no more, and the test stays about the REPL.
SOKHAN_CHAT="$SOKHAN chat --threads 1"
tmp=$(mktemp -d)
T="tmux -L sk_chat_$$ -f /dev/null"
trap '$T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
export LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_STATE_HOME=$tmp/state XDG_CACHE_HOME=$tmp/cache

if ! "$SOKHAN" chat --help >/dev/null 2>&1; then
	sk_skip "chat command" "this sokhan has no chat command"
	sk_done
	exit
fi

# The tiny tokenizer: sokhan's ids equal those of the `tokenizers` library
# (printed by tests/fixtures/make_tiny_tokenizer.py for the same strings).
if "$SOKHAN" tokenize --help >/dev/null 2>&1; then
	ids=$("$SOKHAN" tokenize --bos --model "$M" "سلام world")
	check "tiny tokenizer ids (Persian + English)" [ "$ids" = "2 81 8 28 227 64 24 31" ]
	ids=$("$SOKHAN" tokenize --bos --model "$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3" "می‌خواهم")
	check "tiny tokenizer ids (ZWNJ)" [ "$ids" = "2 48 43 29 27" ]
fi

# --- pipe mode: every line a message or a command; answers on stdout ---
printf 'hello\n/reset\nسلام\n' | $SOKHAN_CHAT --model "$M" --greedy -n 5 >"$tmp/out" 2>"$tmp/err"
st=$?
check "pipe: exit status 0" [ "$st" -eq 0 ]
[ "$st" -eq 0 ] || cat "$tmp/err" >&2
check "pipe: two answers (two stats lines)" [ "$(grep -c 'tokens/s' "$tmp/err")" -eq 2 ]
check "pipe: /reset noted" grep -q 'new conversation' "$tmp/err"
check "pipe: answers on stdout" [ -s "$tmp/out" ]
printf 'hello\n/reset\nسلام\n' | $SOKHAN_CHAT --model "$M" --greedy -n 5 -q >"$tmp/out2" 2>"$tmp/err2"
check "pipe: greedy answers repeat" cmp -s "$tmp/out" "$tmp/out2"
check "pipe: --quiet leaves stderr empty" [ ! -s "$tmp/err2" ]
# a second turn keeps the conversation's cache: only its new tokens are prefilled
printf 'hello\nhow are you\n' | $SOKHAN_CHAT --model "$M" --greedy -n 5 >/dev/null 2>"$tmp/err4"
check "pipe: turn 2 keeps turn 1's tokens" grep -q 'kept from before' "$tmp/err4"
check "pipe: turn 1 prefills everything" sh -c '! grep "tokens/s" "$1" | head -1 | grep -q "kept from before"' - "$tmp/err4"
printf '/adapter on\n' | $SOKHAN_CHAT --model "$M" -q >/dev/null 2>"$tmp/err3"
check "pipe: /adapter without an adapter fails" grep -q 'no adapter' "$tmp/err3"
# --adapter: the PEFT fixture changes the answer; /adapter off gives the
# base model's answer back
A=$M/ref/adapter_all
printf 'hello\n' | $SOKHAN_CHAT --model "$M" --greedy -n 6 -q >"$tmp/base" 2>&1
printf 'hello\n' | $SOKHAN_CHAT --model "$M" --adapter "$A" --greedy -n 6 -q >"$tmp/lora" 2>&1
printf '/adapter off\nhello\n' | $SOKHAN_CHAT --model "$M" --adapter "$A" --greedy -n 6 -q >"$tmp/off" 2>&1
check "pipe: the adapter changes the answer" sh -c '! cmp -s "$1" "$2"' - "$tmp/base" "$tmp/lora"
check "pipe: /adapter off answers as the base model" cmp -s "$tmp/base" "$tmp/off"

# The context of the tiny model is 512 tokens: long turns push the oldest
# out (with a note), a message longer than the context is an error.
long=$(python3 -c 'print("این یک پیام بلند است. " * 8)')
printf '%s\n%s\n%s\n%s\n' "$long" "$long" "$long" "$long" |
	$SOKHAN_CHAT --model "$M" --greedy -n 4 >/dev/null 2>"$tmp/err4"
st=$?
check "pipe: a long conversation: exit status 0" [ "$st" -eq 0 ]
check "pipe: a long conversation: four answers" [ "$(grep -c 'tokens/s' "$tmp/err4")" -eq 4 ]
check "pipe: the oldest turns are dropped with a note" grep -q 'were dropped' "$tmp/err4"
python3 -c 'print("خیلی بلند " * 200)' | $SOKHAN_CHAT --model "$M" -n 4 >/dev/null 2>"$tmp/err5"
st=$?
check "pipe: a message longer than the context fails" [ "$st" -eq 1 ]
check "pipe: ... saying why" grep -q 'too long' "$tmp/err5"
expect_status 2 "usage: bad --bidi" $SOKHAN_CHAT --model "$M" --bidi=sideways
SK_DEFAULT_MODEL=/nonexistent/model.gguf expect_status 1 "no --model: the default model, missing here, is an error" "$SOKHAN" chat

# --- the REPL in tmux ---
if ! command -v tmux >/dev/null 2>&1; then
	sk_skip "tmux REPL" "tmux is not installed"
	sk_done
	exit
fi
case $SOKHAN in /*) bin=$SOKHAN ;; *) bin=$(pwd)/$SOKHAN ;; esac

# capture: the pane with its history
cap() { $T capture-pane -p -J -S -200 -t sk 2>/dev/null; }
# wait_for PATTERN [COUNT]: polls the pane (30 s at most) until PATTERN
# occurs on COUNT lines
wait_for() {
	n=0
	while [ $n -lt 300 ]; do
		[ "$(cap | grep -c -- "$1")" -ge "${2:-1}" ] && return 0
		sleep 0.1
		n=$((n + 1))
	done
	echo "  timed out waiting for '$1'; the pane:" >&2
	cap | cat -v | sed 's/^/  | /' >&2
	return 1
}
wait_file() {
	n=0
	while [ $n -lt 300 ]; do
		[ -s "$1" ] && return 0
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}

$T new-session -d -s sk -x 100 -y 30 \
	"'$bin' chat --threads 1 --model '$M' --greedy -n 12; echo \$? >'$tmp/exit'; sleep 1"
check "tmux: prompt" wait_for '^> '
$T send-keys -t sk -l 'سلام'
$T send-keys -t sk Enter
check "tmux: first answer and its stats" wait_for 'tokens/s'
# the typed line is shown again in visual order (letters right to left)
check "tmux: Persian input redrawn in visual order" wait_for '^> مالس$'
# a reply line between the input and the stats
reply=$(cap | sed -n '/^> مالس$/,/tokens\/s/p' | sed '1d;$d')
check "tmux: a reply line" [ -n "$reply" ]

$T send-keys -t sk -l '/reset'
$T send-keys -t sk Enter
check "tmux: /reset" wait_for 'new conversation'
$T send-keys -t sk -l 'hello'
$T send-keys -t sk Enter
check "tmux: second answer" wait_for 'tokens/s' 2

# Ctrl-C at the prompt clears the line: "junk" must not reach /save
$T send-keys -t sk -l 'junk'
check "tmux: typing shows" wait_for '^> junk$'
$T send-keys -t sk C-c
check "tmux: Ctrl-C gives a fresh prompt" wait_for '^> *$'
$T send-keys -t sk -l "/save $tmp/conv.jsonl"
$T send-keys -t sk Enter
check "tmux: /save wrote the file" wait_file "$tmp/conv.jsonl"
check "tmux: /save is one JSONL conversation" python3 -c '
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, lines
m = json.loads(lines[0])["messages"]
assert [x["role"] for x in m] == ["user", "assistant"], m
assert m[0]["content"] == "hello", m
assert m[1]["content"] == m[1]["content"].strip()
' "$tmp/conv.jsonl"
$T send-keys -t sk -l "/save $tmp/conv.jsonl"
$T send-keys -t sk Enter
check "tmux: a second /save appends a line" wait_for 'appended' 2
check "tmux: two lines after two saves" [ "$(wc -l <"$tmp/conv.jsonl")" -eq 2 ]

$T send-keys -t sk C-d
check "tmux: Ctrl-D ends the session" wait_file "$tmp/exit"
check "tmux: exit status 0" [ "$(cat "$tmp/exit" 2>/dev/null)" = 0 ]
check "tmux: history saved" grep -q 'سلام' "$tmp/state/sokhan/chat_history"

# --shape on: the same line drawn with joined presentation forms
# (meem final, alef final, lam medial, seen initial, in visual order)
$T new-session -d -s sh -x 100 -y 30 "'$bin' chat --threads 1 --model '$M' --greedy -n 4 --shape on; sleep 1"
$T send-keys -t sh -l 'سلام'
$T send-keys -t sh Enter
check "tmux: --shape on joins the letters" sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do $T capture-pane -t sh -p | grep -q '^> ﻡﺎﻠﺳ$' && exit 0; sleep 0.5; done; exit 1"
$T kill-server 2>/dev/null
sk_done
