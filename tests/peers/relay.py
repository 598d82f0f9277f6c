#!/usr/bin/env python3
"""Transparent stdio relay: the simplest possible "proxy" baseline.

    python3 relay.py [--chunk N] -- CMD [ARGS...]

Spawns CMD, copies our stdin to its stdin and its stdout to our stdout, byte for byte,
line by line; its stderr is inherited. With --chunk N every line is written out in pieces of
at most N bytes, each flushed separately, to check that peers cope with arbitrary framing
boundaries. Stdin EOF closes the child's stdin; the relay exits with the child's status.
Standard library only, so it runs with any python3.
"""
import os
import signal
import subprocess
import sys
import threading


def main() -> int:
    argv = sys.argv[1:]
    chunk = 0
    if argv[:1] == ["--chunk"]:
        chunk = int(argv[1])
        argv = argv[2:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: relay.py [--chunk N] -- CMD [ARGS...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def pump(src, dst, close_dst):
        try:
            for line in iter(src.readline, b""):
                if chunk > 0:
                    for i in range(0, len(line), chunk):
                        dst.write(line[i:i + chunk])
                        dst.flush()
                else:
                    dst.write(line)
                    dst.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
        finally:
            if close_dst:
                try:
                    dst.close()
                except OSError:
                    pass

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, forward)

    up = threading.Thread(target=pump, args=(sys.stdin.buffer, child.stdin, True), daemon=True)
    up.start()
    # Downstream on the main thread: when the child's stdout ends, we are done.
    pump(child.stdout, sys.stdout.buffer, False)

    try:
        rc = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        rc = child.wait()
    sys.stdout.flush()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
