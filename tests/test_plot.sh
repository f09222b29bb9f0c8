#!/bin/sh
# `sokhan plot`: the chart of the committed training log
# (tests/fixtures/train/metrics.jsonl, with a null loss and a torn last
# line): well-formed SVG with the expected series, --out, a metrics file
# as argument, and the error statuses. Rendered to PNG when rsvg-convert
# is installed (librsvg2-bin).
. "$(dirname "$0")/lib.sh"

FIX=$SK_SRCDIR/tests/fixtures/train/metrics.jsonl
T=$(mktemp -d /tmp/sk_plot.XXXXXX)
trap 'rm -rf "$T"' EXIT

if ! $SOKHAN plot --help >/dev/null 2>&1; then
	sk_skip "sokhan plot" "the plot command is not in this build"
	sk_done
	exit $?
fi

mkdir -p "$T/run"
cp "$FIX" "$T/run/metrics.jsonl"
expect_status 0 "plot a run directory" $SOKHAN plot "$T/run"
check "default output RUN_DIR/loss.svg" test -s "$T/run/loss.svg"
check "torn line reported" sh -c "printf '%s' \"\$1\" | grep -q '1 line is not a metrics record'" _ "$err"
check "non-finite values reported" sh -c "printf '%s' \"\$1\" | grep -q '2 non-finite values were left out'" _ "$err"
check "summary line" test "$out" = "Wrote $T/run/loss.svg (120 steps, 4 evaluations)"

svg=$T/run/loss.svg
if command -v python3 >/dev/null 2>&1; then
	check "well-formed XML" python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$svg"
	# 5 paths: raw loss, EMA, eval line, lr, grad norm; 4 eval markers + 1 legend marker
	check "series present" python3 -c "
import sys, xml.dom.minidom as m
d = m.parse(sys.argv[1])
paths = d.getElementsByTagName('path')
circles = d.getElementsByTagName('circle')
texts = [t.firstChild.data for t in d.getElementsByTagName('text') if t.firstChild]
widths = sorted(p.getAttribute('stroke-width') for p in paths)
assert len(paths) == 5, len(paths)
assert len(circles) == 5, len(circles)
assert '2.5' in widths and '1.0' in widths, widths
for label in ('loss', 'eval loss', 'learning rate', 'gradient norm', 'step', '120', '0.0002'):
    assert label in texts, label
assert any('EMA 0.83' in t for t in texts)
assert any('2 non-finite values skipped' in t for t in texts)
# raw loss path: 119 finite points of 120, in 2 pieces around the null at step 88
raw = [p for p in paths if p.getAttribute('stroke-width') == '1.0'][0].getAttribute('d')
assert raw.count('M') == 2 and raw.count('L') == 117, (raw.count('M'), raw.count('L'))
" "$svg"
else
	sk_skip "well-formed XML" "no python3"
	sk_skip "series present" "no python3"
fi

expect_status 0 "plot with --out" $SOKHAN plot -q "$T/run" --out "$T/chart.svg"
check "--out written, quiet" sh -c "test -s '$T/chart.svg' && test -z \"\$1\"" _ "$out"
expect_status 0 "plot a metrics file" $SOKHAN plot "$T/run/metrics.jsonl" -o "$T/file.svg"
check "same chart from the file" cmp -s "$T/chart.svg" "$T/file.svg"

mkdir -p "$T/empty"
: >"$T/empty/metrics.jsonl"
expect_status 1 "empty log is an error" $SOKHAN plot "$T/empty"
check "empty log message" sh -c "printf '%s' \"\$1\" | grep -q 'no training records'" _ "$err"
check "no chart for an empty log" test ! -e "$T/empty/loss.svg"
expect_status 1 "missing run directory" $SOKHAN plot "$T/nonexistent"
mkdir -p "$T/nolog"
expect_status 1 "directory without a log" $SOKHAN plot "$T/nolog"
expect_status 2 "RUN_DIR is required" $SOKHAN plot
expect_status 2 "one RUN_DIR only" $SOKHAN plot "$T/run" "$T/run"

# png_ok PNG SVG: the PNG has the SVG's width and height and is not blank
# (its pixels take many values: the white page, the lines, the text).
png_ok() {
	python3 - "$1" "$2" <<'EOF'
import re, struct, sys, zlib
png, svg = open(sys.argv[1], "rb").read(), open(sys.argv[2]).read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", png[16:24])
m = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)"', svg)
assert (w, h) == (int(m[1]), int(m[2])), ((w, h), m.groups())
idat, i = b"", 8
while i < len(png):
    n, kind = struct.unpack(">I4s", png[i:i + 8])
    if kind == b"IDAT":
        idat += png[i + 8:i + 8 + n]
    i += 12 + n
assert len(set(zlib.decompress(idat))) > 16, "a blank image"
EOF
}
if command -v rsvg-convert >/dev/null 2>&1; then
	check "renders to PNG" rsvg-convert -o "$T/loss.png" "$svg"
	check "the PNG has the chart's size and is drawn" png_ok "$T/loss.png" "$svg"
else
	sk_skip "renders to PNG" "no rsvg-convert (apt-get install librsvg2-bin)"
fi
sk_done
