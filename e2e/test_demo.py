"""The README's first command works: deploy/local-demo.sh brings up an S3
server and the gateway, and shows a multipart upload, an abort and a refused
request with the AWS CLI."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_local_demo_runs_end_to_end():
    env = dict(os.environ, S3GATE_BIN=str(ROOT / "target" / "debug" / "s3gate"))
    r = subprocess.run(["bash", str(ROOT / "deploy" / "local-demo.sh"), "--exit"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "UploadId:" in out
    assert "aborted " in out
    assert "uploads left: 0" in out
    assert "SignatureDoesNotMatch" in out
    assert "demo finished" in out
