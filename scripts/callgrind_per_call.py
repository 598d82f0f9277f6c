#!/usr/bin/env python3
"""Instructions per call, by function: (BIG - BASE) / N over two callgrind profiles of the same
command run with few and with N more calls, so that start-up (policy loading, lazy regex
compilation) cancels out. Usage: callgrind_per_call.py BASE.out BIG.out N [TOP] [inclusive:yes|no]
"""
import re
import subprocess
import sys


def load(path, inclusive):
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if m:
            name = re.sub(r"\s*\[.*\]$", "", m.group(2))
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def main():
    base, big, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    inclusive = sys.argv[5] if len(sys.argv) > 5 else "yes"
    a, b = load(base, inclusive), load(big, inclusive)
    rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in set(a) | set(b))
    for per_call, name in reversed(rows[-top:]):
        print(f"{per_call:12.0f}  {name[:170]}")


if __name__ == "__main__":
    main()
