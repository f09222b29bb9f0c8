#!/bin/sh
# On a GPU machine: unpacks the bundle tests/gpu/pack.sh made (once) and
# runs a command with its programs first on PATH and its libraries found.
#   tests/gpu/env.sh COMMAND [ARG...]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dest=${SK_GPU_DIR:-/tmp/sokhan-gpu}
if [ ! -x "$dest/bin/sokhan" ]; then
	mkdir -p "$dest"
	xz -dc "$top/.gpu/bundle.tar.xz" | tar -C "$dest" -xf -
fi
LD_LIBRARY_PATH=$dest/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PATH=$dest/bin:$PATH
SK_SRCDIR=$top
export LD_LIBRARY_PATH PATH SK_SRCDIR
exec "$@"
