#!/bin/sh
# `sokhan tui` driven through tmux at 100x30 with the tiny Gemma 3n: a
# Persian chat message and its streamed answer, a ZWNJ between the letters
# it parts in visual order, Compare filling two columns
# from one batch, the Train and Log views, resize (also below 80x24),
# Ctrl-Z / SIGCONT, quit with status 0 and the terminal restored; a first
# run started from the Train view's form with no training flags (default
# dataset and run directory, steps edited), chat with the live adapter while
# it trains, e on the held-out split, non-zero memory bars; the bidi
# mode escapes in the raw byte stream; key echo latency while an answer
# streams (reported, no limit). The screen is read from the TUI's own text
# dump (--dump) and from tmux capture-pane.
. "$(dirname "$0")/lib.sh"
# the screens asserted below are unshaped (shaping: tests/test_bidi.c, test_chat.sh)
SOKHAN_SHAPE=off
export SOKHAN_SHAPE
M=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
A=$M/ref/adapter_all
# SOKHAN_TUI overrides the command (e.g. a build with a temporary main).
TUI=${SOKHAN_TUI:-"$SOKHAN tui"}
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset NO_COLOR SOKHAN_TUI_DUMP SOKHAN_BIDI

if ! command -v tmux >/dev/null 2>&1; then
	sk_skip "tui" "tmux is not installed"
	sk_done
	exit
fi
if ! $TUI --help >/dev/null 2>&1; then
	sk_skip "tui" "this sokhan has no tui command"
	sk_done
	exit
fi

tmp=$(mktemp -d)
T="tmux -L sk_tui_$$ -f /dev/null"
trap '$T kill-server 2>/dev/null; tmux -L sk_tui_train_$$ kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
D=$tmp/screen.txt

# wait_for PATTERN [SECONDS]: until the dump holds the (fixed) text.
wait_for() {
	i=0
	lim=$(( ${2:-10} * 50 ))
	while [ $i -lt $lim ]; do
		grep -qF -- "$1" "$D" 2>/dev/null && return 0
		sleep 0.02
		i=$((i + 1))
	done
	echo "  timed out waiting for: $1" >&2
	sed 's/^/  | /' "$D" >&2 2>/dev/null
	return 1
}
now_ms() { date +%s%3N; }

# 60 tokens at 25 ms each: answers take 1.5 s, long enough to watch them stream.
$T new-session -d -x 100 -y 30 "printf 'BEFORE-TUI\n'; echo \$\$ >$tmp/pid; exec sh -c '$TUI --model $M --adapter $A --threads 1 --greedy -n 60 --token-delay-us 25000 --data $SK_SRCDIR/tests/fixtures/train/tiny.jsonl --out $tmp/run --steps 40 --rank 4 --dump $D; echo EXIT=\$? >$tmp/exit; sleep 60'"
check "starts, model and adapter load" wait_for "adapter on"
check "header lists the four views" grep -q '1 Chat   2 Compare   3 Train   4 Log' "$D"
check "dump is 30 rows" [ "$(wc -l <"$D")" -eq 30 ]
check "alternate screen on while running" [ "$($T display -p '#{alternate_on}')" = 1 ]

# --- Chat: a Persian message; the reply streams ---
$T send-keys -l 'سلام دنیا'
sleep 0.2
# The input line shows the RTL text in visual order, right-aligned.
check "input line in visual order" grep -q '^> .*ایند مالس$' "$D"
$T send-keys Enter
check "the answer streams (generating)" wait_for "generating" 5
# Key echo latency while the answer streams: type, then watch the dump.
lat=""
for ch in a b c d e; do
	t0=$(now_ms)
	$T send-keys -l "$ch"
	i=0
	while ! grep -q "^> .*$ch" "$D" && [ $i -lt 500 ]; do sleep 0.002; i=$((i + 1)); done
	lat="$lat $(( $(now_ms) - t0 ))"
done
echo "# key echo latency while generating (ms, tmux send-keys to screen dump):$lat"
check "typing works while generating" grep -q '^> abcde' "$D"
check "the answer ends with its stats" wait_for "tokens/s; prompt" 10
check "user message right-aligned in visual order" grep -q '^ \{40,\}ایند مالس$' "$D"
check "model label and a reply" grep -q '^Model + adapter' "$D"
$T send-keys C-u
# A ZWNJ stays between the letters it parts, where ICU puts it: ی‌هشوپ, not یه‌شوپ.
$T send-keys -l 'پوشه‌ی'
check "ZWNJ between its letters in visual order" sh -c "for i in \$(seq 250); do grep -q '^> .*ی‌هشوپ\$' '$D' && exit 0; sleep 0.02; done; exit 1"
$T send-keys C-u
# Ctrl-C stops an answer mid-way.
$T send-keys -l 'hello'; $T send-keys Enter
wait_for "generating" 5 >/dev/null
sleep 0.3
$T send-keys C-c
check "Ctrl-C stops the answer" wait_for "(stopped)" 5

# --- Compare: two columns from one batch ---
$T send-keys Tab
check "Compare view" wait_for "compare>" 5
$T send-keys -l 'یک دو سه'; $T send-keys Enter
sleep 0.6
# Mid-way both columns have text and both still say generating.
row=$(sed -n '5p' "$D")
left=$(printf '%s' "$row" | sed 's/│.*//' | tr -d ' ')
right=$(printf '%s' "$row" | sed 's/^[^│]*│//' | tr -d ' ')
check "both columns fill while streaming" [ -n "$left" -a -n "$right" ]
check "both columns still generating" [ "$(grep -o 'generating \.\.\.' "$D" | wc -l)" -eq 2 ]
check "both columns finish" wait_for "60 tokens" 10
sleep 0.2
check "two per-column stats" [ "$(grep -o '[0-9]* tokens, [0-9.]* tokens/s' "$D" | wc -l)" -eq 2 ]
check "base and adapter differ" [ "$(sed -n '5,27p' "$D" | sed 's/│.*//' | tr -d ' ')" != "$(sed -n '5,27p' "$D" | sed 's/^[^│]*│//' | tr -d ' ')" ]
cp "$D" "$tmp/compare.txt"

# --- Train and Log ---
$T send-keys Tab
check "Train view" wait_for "Loss  (" 5
if grep -q 'not available in this build' "$D"; then
	sk_ok "Train view says training is not available"
else
	$T send-keys s
	check "training starts (state running)" wait_for "state     running" 10
	# any step past the first: on a fast machine the run may already be far along
	check "step counter advances" sh -c "for i in \$(seq 1500); do grep -Eq 'step +([2-9]|[1-9][0-9]+) / 40' '$D' && exit 0; sleep 0.02; done; exit 1"
	check "loss chart drawn" python3 -c "import sys;sys.exit(0 if any(0x2801<=ord(c)<=0x28ff for c in open('$D',encoding='utf-8').read()) else 1)"
	check "run ends" wait_for "state     done" 60
	check "final step shown" grep -q 'step      40 / 40' "$D"
	$T send-keys a
	check "a: the run's adapter loads" wait_for "run/adapter loaded" 10
fi
check "Train view memory bars" grep -q '^.*│ weights ' "$D"
$T send-keys 4
check "Log view" wait_for "model loaded in" 5
$T send-keys F1
check "help opens" wait_for "Any key closes this help" 5
$T send-keys x
sleep 0.2
check "help closes" sh -c "! grep -q 'Any key closes' '$D'"

# --- resize ---
$T resize-window -x 120 -y 40
sleep 0.4
check "resize: 40 rows" [ "$(wc -l <"$D")" -eq 40 ]
check "resize: header reaches column 120" grep -q 'F10 quit$' "$D"
$T resize-window -x 70 -y 20
sleep 0.4
check "too small: a message instead" wait_for "too small" 5
$T resize-window -x 100 -y 30
sleep 0.4
check "back to 100x30" wait_for "4 Log" 5

# --- Ctrl-Z suspends, SIGCONT resumes ---
$T send-keys F2
sleep 0.2
pid=$(pgrep -P "$(cat "$tmp/pid")" 2>/dev/null | head -1)
[ -n "$pid" ] || pid=$(cat "$tmp/pid")
$T send-keys C-z
sleep 0.4
st=$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)
check "Ctrl-Z stops the process" [ "$st" = T ]
check "suspended: normal screen back" [ "$($T display -p '#{alternate_on}')" = 0 ]
kill -CONT "$pid"
sleep 0.4
check "SIGCONT: the TUI is back" [ "$($T display -p '#{alternate_on}')" = 1 ]

# --- quit ---
$T send-keys F10
i=0
while [ ! -s "$tmp/exit" ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i + 1)); done
check "exit status 0" grep -q 'EXIT=0' "$tmp/exit"
check "terminal restored: no alternate screen" [ "$($T display -p '#{alternate_on}')" = 0 ]
check "terminal restored: the shell's screen is back" sh -c "$T capture-pane -p | grep -q BEFORE-TUI"
$T kill-server 2>/dev/null

# --- a first run from the Train view's form: no training flags ---
# Started in a directory of its own, the dataset field still defaults to the
# sample beside the build's binary (data/persian-sample.jsonl); the run
# itself is on the tiny dataset, typed into the field.
W=$tmp/work
mkdir -p "$W"
D=$tmp/form.txt
# wait_re ERE [SECONDS]: until the dump matches the regular expression.
wait_re() {
	i=0
	lim=$(( ${2:-10} * 50 ))
	while [ $i -lt $lim ]; do
		grep -qE -- "$1" "$D" 2>/dev/null && return 0
		sleep 0.02
		i=$((i + 1))
	done
	echo "  timed out waiting for: $1" >&2
	sed 's/^/  | /' "$D" >&2 2>/dev/null
	return 1
}
# Absolute paths: the TUI runs in $W.
M_ABS=$(cd "$M" && pwd)
set -- $TUI
first=$1
shift
case $first in /*) ;; */*) first=$(pwd)/$first ;; esac
TUI_ABS="$first $*"
$T new-session -d -x 100 -y 30 "cd '$W' && exec $TUI_ABS --model $M_ABS --threads 1 --greedy -n 12 --token-delay-us 20000 --view train --dump $D"
check "form: recipe quick, 30 steps" wait_re 'recipe +‹ quick › +30 steps' 10
bindir=$(cd "$(dirname "$first")" && pwd)
if [ -f "$bindir/data/persian-sample.jsonl" ]; then
	# a long path shows its end
	check "form: the dataset defaults to the sample beside the binary" grep -qE 'dataset +.*/data/persian-sample\.jsonl' "$D"
else
	sk_skip "form: the dataset defaults to the sample beside the binary" "a build outside the source tree"
fi
check "form: the run directory defaults to runs/<timestamp>" grep -qE 'output +runs/[0-9]{8}-[0-9]{6}' "$D"
# Down enters the form on the dataset: clear it, type the tiny dataset;
# then to the steps field, clear it, type 150.
$T send-keys Down C-u
$T send-keys -l "$SK_SRCDIR/tests/fixtures/train/tiny.jsonl"
check "form: the dataset field is edited" wait_for "tiny.jsonl_" 5
$T send-keys Down Down Down C-u
$T send-keys -l 150
check "form: the steps field is edited" wait_re "▸ steps +150_" 5
$T send-keys Enter
check "form: Enter starts the run" wait_for "state     running" 15
check "form run: the step counter advances" wait_re 'step +([2-9]|[1-9][0-9]+) / 150' 30
# Chat with the live adapter while it trains.
$T send-keys F2
$T send-keys -l 'hello'; $T send-keys Enter
check "chat during the run: the live adapter is on" wait_for "adapter on (live, training)" 5
check "chat during the run: an answer with the adapter" wait_for "tokens/s; prompt" 10
check "chat during the run: labelled Model + adapter" grep -q '^Model + adapter' "$D"
$T send-keys F4
check "the run goes on after the answer" wait_re 'state +running' 5
s0=$(grep -oE 'step +[0-9]+' "$D" | grep -oE '[0-9]+$')
sleep 0.5
s1=$(grep -oE 'step +[0-9]+' "$D" | grep -oE '[0-9]+$')
check "the step counter still advances ($s0 -> $s1)" [ "${s1:-0}" -gt "${s0:-0}" ]
# p pauses (so the run cannot end first); e: the held-out split (a tenth of the data) now.
$T send-keys p
check "p pauses the run" wait_re 'state +paused' 10
$T send-keys e
check "e: an evaluation loss appears" wait_re 'eval loss [0-9]+\.[0-9]+' 15
check "memory: weights non-zero" grep -qE '│ weights .* [1-9][0-9.]* [KMG]iB' "$D"
check "memory: adapter non-zero" grep -qE '│ adapter .* [1-9][0-9.]* [KMG]iB' "$D"
check "memory: optimizer non-zero" grep -qE '│ optimizer .* [1-9][0-9.]* [KMG]iB' "$D"
check "memory: activations non-zero" grep -qE '│ activations .* [1-9][0-9.]* [KMG]iB' "$D"
check "memory: KV cache of the answer non-zero" grep -qE '│ KV cache .* [1-9][0-9.]* [KMG]?i?B' "$D"
check "memory: host RSS non-zero" grep -qE '│ host RSS .* [1-9][0-9.]* [KMG]iB' "$D"
cp "$D" "$tmp/form-run.txt"
check "the run is still paused after e" grep -qE 'state +paused' "$D"
$T send-keys x
check "x stops the run" wait_for "state     done" 20
check "after the run: the form is back" wait_for "New training run" 5
check "the run directory is under the current directory" [ -d "$W/runs" ]
$T send-keys F10
$T kill-server 2>/dev/null

# --- `sokhan train --tui`: a run configured on the command line, watched in the TUI ---
D=$tmp/train-tui.txt
# a server of its own: restarting one just killed can race ("server exited unexpectedly")
T2="tmux -L sk_tui_train_$$ -f /dev/null"
$T2 new-session -d -x 100 -y 30 "SOKHAN_TUI_DUMP=$D $SOKHAN train --tui --model $M --data $SK_SRCDIR/tests/fixtures/train/tiny.jsonl --out $tmp/cli-run --quant none --threads 1 --batch 1 --grad-accum 1 --max-steps 6 --lr 1e-3 --save-every 3; echo EXIT=\$? >$tmp/train-tui.exit; sleep 30"
check "train --tui: opens on the Train view with the command line's run" wait_for "(command line)" 15
check "train --tui: the run finishes" wait_for "state     done" 60
$T2 send-keys F10
check "train --tui: exit status 0" sh -c "for i in \$(seq 50); do grep -q 'EXIT=0' $tmp/train-tui.exit 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
check "train --tui: the run directory has the final adapter" test -f "$tmp/cli-run/adapter/adapter_model.safetensors"
$T2 kill-server 2>/dev/null

# --- bidi mode escapes in the byte stream (tmux drops them, so use script) ---
if command -v script >/dev/null 2>&1; then
	(sleep 1; printf '\033[21~'; sleep 1) | TERM=xterm-256color script -qfec "$TUI --bidi=app" "$tmp/raw" >/dev/null 2>&1
	check "app mode: ESC[8l before the alternate screen" \
		sh -c "LC_ALL=C grep -aq \"$(printf '\033')\\[8l.*$(printf '\033')\\[?1049h\" '$tmp/raw' || python3 -c \"import sys;d=open('$tmp/raw','rb').read();a=d.find(b'\x1b[8l');b=d.find(b'\x1b[?1049h');sys.exit(0 if 0<=a<b else 1)\""
	check "app mode: ESC[8h after leaving it" python3 -c "import sys;d=open('$tmp/raw','rb').read();a=d.rfind(b'\x1b[8h');b=d.rfind(b'\x1b[?1049l');sys.exit(0 if 0<=b<a else 1)"
	(sleep 1; printf '\033[21~'; sleep 1) | TERM=xterm-256color script -qfec "$TUI --bidi=terminal" "$tmp/raw2" >/dev/null 2>&1
	check "terminal mode: no bidi escapes" python3 -c "import sys;d=open('$tmp/raw2','rb').read();sys.exit(1 if b'\x1b[8l' in d or b'\x1b[8h' in d or not d else 0)"
fi
sk_done
