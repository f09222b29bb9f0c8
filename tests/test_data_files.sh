#!/bin/sh
# The data files the program reads at run time (the sample dataset, the
# Train form's default) are found from any working directory: beside the
# executable for a build that is not installed, under $(pkgdatadir) once
# `make install` has put them there. `sokhan --version` says where.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case $SOKHAN in /*) bin=$SOKHAN ;; *) bin=$(pwd)/$SOKHAN ;; esac
bindir=$(cd "$(dirname "$bin")" && pwd)
sample=$SK_SRCDIR/data/persian-sample.jsonl

mkdir "$tmp/elsewhere"
if [ -f "$bindir/data/persian-sample.jsonl" ]; then
	out=$(cd "$tmp/elsewhere" && "$bin" --version)
	check "from another directory: the sample beside the build's binary" \
		sh -c "echo \"\$1\" | grep -qxF 'Sample dataset: $bindir/data/persian-sample.jsonl'" _ "$out"
else
	sk_skip "from another directory: the sample beside the build's binary" "a build outside the source tree"
fi

# a copy of the binary with data/ beside it, run from elsewhere
mkdir -p "$tmp/bin/data"
cp "$bin" "$tmp/bin/sokhan"
cp "$sample" "$tmp/bin/data/"
out=$(cd "$tmp/elsewhere" && "$tmp/bin/sokhan" --version)
check "a moved build finds data/ beside itself" \
	sh -c "echo \"\$1\" | grep -qxF 'Sample dataset: $tmp/bin/data/persian-sample.jsonl'" _ "$out"
rm -r "$tmp/bin/data"
out=$(cd "$tmp/elsewhere" && "$tmp/bin/sokhan" --version)
check "without data/ it says where it looked" \
	sh -c "echo \"\$1\" | grep -qF 'Sample dataset: persian-sample.jsonl: not found in $tmp/bin/data nor in '" _ "$out"
# the second place is the installed data directory
pkgdatadir=$(echo "$out" | sed -n 's/^Sample dataset: .* nor in //p')

# make install puts the data where the binary looks for it
if [ -f Makefile ] && grep -q '^install:' Makefile && [ -n "$pkgdatadir" ]; then
	${MAKE:-make} -s install DESTDIR="$tmp/inst" >"$tmp/install.log" 2>&1
	check "make install DESTDIR=... succeeds" test $? -eq 0
	check "make install puts the sample in \$(pkgdatadir) ($pkgdatadir)" cmp -s "$sample" "$tmp/inst$pkgdatadir/persian-sample.jsonl"
	check "make install puts the data card beside it" test -s "$tmp/inst$pkgdatadir/README.md"
else
	sk_skip "make install DESTDIR=..." "no Makefile in the working directory"
fi
sk_done
