#!/usr/bin/env python3
"""Run a command until our standard input closes, then stop it (SIGTERM,
then SIGKILL). Test harnesses start servers through this so that a harness
that exits or dies never leaves a server behind. If the command exits on
its own, so does the tether (status 1 if it was killed by a signal), so
the harness sees it."""
import os, signal, subprocess, sys, threading

proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
stopping = threading.Event()


def stop(*_):
    stopping.set()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(proc.returncode if proc.returncode and proc.returncode > 0 else 0)


def exited():
    code = proc.wait()
    if not stopping.is_set():
        os._exit(code if code >= 0 else 1)


signal.signal(signal.SIGTERM, stop)
threading.Thread(target=exited, daemon=True).start()
try:
    while sys.stdin.read(65536):
        pass
except KeyboardInterrupt:
    pass
stop()
