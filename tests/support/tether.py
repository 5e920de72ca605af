#!/usr/bin/env python3
"""Run a command until our standard input closes, then stop it (SIGTERM,
then SIGKILL). Test harnesses start servers through this so that a harness
that exits or dies never leaves a server behind."""
import signal, subprocess, sys

proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)


def stop(*_):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(proc.returncode if proc.returncode and proc.returncode > 0 else 0)


signal.signal(signal.SIGTERM, stop)
try:
    while sys.stdin.read(65536):
        pass
except KeyboardInterrupt:
    pass
stop()
