#!/usr/bin/env python3
"""Every kernel launched through sk_launch (kernels/launch.cuh) must call
sk_pdl_wait() before it touches global memory: with programmatic dependent
launches (the default on Hopper) such a kernel may start while the kernel
before it is still writing. Prints the kernels that do not, one a line,
and exits 1 when there is any.
    kernel_launch_lint.py KERNELS_DIR"""
import glob
import os
import re
import sys


def bodies(text):
    """(name, body) of each __global__ function in text."""
    for m in re.finditer(r"__global__[^{;]*?\b([A-Za-z_]\w*)\s*\(", text):
        i = text.index("{", m.end())
        depth = 0
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                yield m.group(1), text[i:j]
                break


def main():
    d = sys.argv[1]
    texts = {f: open(f, encoding="utf-8").read() for f in sorted(glob.glob(os.path.join(d, "*.cu*")))}
    launched = set()
    for t in texts.values():
        launched.update(re.findall(r"sk_launch\(\s*\w+\s*,\s*([A-Za-z_]\w*)", t))
    if not launched:
        print("no sk_launch calls found in %s" % d)
        return 1
    bad = []
    for f, t in texts.items():
        for name, body in bodies(t):
            # a kernel that first calls a device helper of its own which waits counts as waiting
            if name in launched and "sk_pdl_wait" not in body and not re.search(r"\w+_pdl\w*\(", body):
                bad.append("%s: %s is launched by sk_launch but never calls sk_pdl_wait()" % (os.path.basename(f), name))
    for b in bad:
        print(b)
    print("%d kernels launched by sk_launch, %d without sk_pdl_wait()" % (len(launched), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
