"""The AWS CLI (v1, `awscli` from the venv) run command after command in one
interpreter, for the e2e client matrix (e2e/test_client_matrix.py): loading
awscli and botocore costs most of a second per `aws` process, and the matrix
runs a few dozen commands.

Protocol: one JSON object a line on stdin, `{"argv": [...], "stdin": path or
null}` (argv without the leading `aws`); for each, one JSON line on stdout,
`{"rc": exit code, "out": what the command printed, "err": its stderr}`. The
commands share one CLI driver (`awscli.clidriver.create_clidriver()`, what the
`aws` script makes, and its botocore session with the service models it
loaded): the matrix gives every command of a runner the same global options
(endpoint, region, CA bundle) and environment. With "stdin", the file is the
command's standard input (`aws s3 cp - ...`).

Every `*.localhost` name resolves to loopback in this process (virtual-hosted
style asks for `<bucket>.localhost`, which the machine's resolver need not
know).
"""
import io
import json
import os
import socket
import sys

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo


def main():
    # The control channel: duplicates of fds 0 and 1, so that a command can
    # be given a file as its stdin (fd 0) and its output captured.
    ctl_in = os.fdopen(os.dup(0), "rb", buffering=0)
    ctl_out = os.fdopen(os.dup(1), "w")
    from awscli.clidriver import create_clidriver

    driver = create_clidriver()

    while True:
        line = b""
        while not line.endswith(b"\n"):
            c = ctl_in.read(1)
            if not c:
                return
            line += c
        req = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdout, sys.stderr
        saved_stdin = None
        if req.get("stdin"):
            saved_stdin = os.dup(0)
            fd = os.open(req["stdin"], os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
        sys.stdout, sys.stderr = out, err
        try:
            rc = driver.main(req["argv"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException as e:  # a crash of the CLI is a failed command
            rc = 255
            err.write(f"{type(e).__name__}: {e}\n")
        finally:
            sys.stdout, sys.stderr = saved
            if saved_stdin is not None:
                os.dup2(saved_stdin, 0)
                os.close(saved_stdin)
        ctl_out.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        ctl_out.flush()


if __name__ == "__main__":
    main()
