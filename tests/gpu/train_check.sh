#!/bin/sh
# `sokhan train` on the GPU against the CPU, end to end on the tiny Gemma 3n
# fixture (part of tests/gpu/check.sh): 20 optimizer steps follow the CPU's
# loss curve within bf16 noise (every step's loss within 3 % of the CPU's,
# and the last five within 5 % of their mean: the same descent, not one
# number), and a checkpoint written on one device resumes on the other.
# TAP-like "ok"/"not ok" lines.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
SOKHAN=${SOKHAN:-$(command -v sokhan || echo "$top/sokhan")}
M=$top/tests/fixtures/hf/tiny-gemma3n
D=$top/tests/fixtures/train/tiny.jsonl
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
check() { # name, command...
	n=$((n + 1))
	name=$1
	shift
	if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fails=$((fails + 1)); fi
}
OPTS="--model $M --data $D --max-len 64 --loss-on all --lr 5e-3 --warmup 2 --batch 2 --grad-accum 2 --epochs 50
 --max-steps 20 --save-every 10 --keep 5 --eval-frac 0 --dropout 0 -q"
# the step losses of a run, one per line
losses() { sed -n 's/.*"type":"train".*"loss":\([-0-9.e+]*\).*/\1/p' "$1/metrics.jsonl"; }
# every step within rel of the reference, line by line
close() { # a b rel
	paste "$1" "$2" | awk -v r="$3" 'BEGIN { bad = 0; n = 0 }
		{ n++; d = $1 - $2; if (d < 0) d = -d; if (d > r * ($2 < 0 ? -$2 : $2)) { bad = 1; print "  step " n ": " $1 " vs " $2 } }
		END { exit (bad || n < 20) }'
}

"$SOKHAN" train $OPTS --device cpu --out "$T/cpu" >/dev/null 2>"$T/cpu.err"
check "20 steps on the CPU" [ -s "$T/cpu/adapter/adapter_model.safetensors" ]
"$SOKHAN" train $OPTS --device cuda --out "$T/gpu" >/dev/null 2>"$T/gpu.err"
st=$?
check "20 steps on the GPU" [ "$st" -eq 0 ] && [ -s "$T/gpu/adapter/adapter_model.safetensors" ]
[ "$st" -eq 0 ] || sed 's/^/  /' "$T/gpu.err"
losses "$T/cpu" >"$T/lc"
losses "$T/gpu" >"$T/lg"
echo "# losses, CPU then GPU:" $(head -1 "$T/lc") ... $(tail -1 "$T/lc") "/" $(head -1 "$T/lg") ... $(tail -1 "$T/lg")
check "the GPU's loss curve follows the CPU's (each step within 3 %)" close "$T/lg" "$T/lc" 0.03

# a GPU checkpoint (step 10) resumed on the CPU, and a CPU one on the GPU
for pair in "gpu cpu" "cpu gpu"; do
	set -- $pair
	from=$1 to=$2
	cp -r "$T/$from" "$T/$from-$to"
	rm -rf "$T/$from-$to/checkpoint-20" "$T/$from-$to/adapter"
	# the metrics past the checkpoint belong to the old run
	"$SOKHAN" train $OPTS --device "$([ "$to" = gpu ] && echo cuda || echo cpu)" --resume "$T/$from-$to" >/dev/null 2>"$T/r.err"
	st=$?
	check "a $from checkpoint resumes on the $to" [ "$st" -eq 0 ] && [ -s "$T/$from-$to/adapter/adapter_model.safetensors" ]
	[ "$st" -eq 0 ] || sed 's/^/  /' "$T/r.err"
	losses "$T/$from-$to" >"$T/lr"
	check "  and continues the curve (each step within 3 % of the CPU's)" close "$T/lr" "$T/lc" 0.03
done
echo "# $n cases, $fails failed"
[ "$fails" -eq 0 ]
