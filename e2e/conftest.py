"""Session fixtures for the s3gate end-to-end suite.

One session starts, on loopback and on free ports:

* Garage (through tests/support/garage.py) with bucket ``e2e-garage``;
* moto_server (through tests/support/tether.py) with bucket ``e2e-moto``;
* a self-signed certificate for ``localhost`` / ``127.0.0.1``;
* two gateways (target/debug/s3gate), one in front of each upstream, each
  with a plain-HTTP and an HTTPS listener.

The ``target`` fixture is parametrized over garage-http, garage-https,
moto-http and moto-https. Every server is started through a pipe on its
standard input, so nothing outlives the test run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import boto3
import pytest
from botocore.config import Config

E2E = Path(__file__).resolve().parent
REPO = E2E.parent
GARAGE_PY = REPO / "tests" / "support" / "garage.py"
TETHER_PY = REPO / "tests" / "support" / "tether.py"
S3GATE = Path(os.environ.get("S3GATE_BIN", REPO / "target" / "debug" / "s3gate"))
VENV_BIN = Path(sys.executable).parent

REGION = "us-east-1"
ALICE_KEY = "AKIAALICE00000000001"
ALICE_SECRET = "alice-secret-key-for-tests-0000000000001"
BOB_KEY = "AKIABOB0000000000002"
BOB_SECRET = "bob-secret-key-for-tests-00000000000002"
GARAGE_BUCKET = "e2e-garage"
MOTO_BUCKET = "e2e-moto"
MOTO_KEY = "motoaccesskey"
MOTO_SECRET = "motosecretkey"

# Gateway logs of this session: name -> path. The report hook below shows
# what each gateway logged during a failing test.
GATEWAY_LOGS: dict[str, Path] = {}


# --------------------------------------------------------------------------
# small helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, log: Optional[Path] = None,
                  proc: Optional[subprocess.Popen] = None, timeout: float = 60,
                  tls_ca: Optional[Path] = None) -> None:
    """Poll a TCP connect until `port` accepts (readiness, not a fixed wait).
    With `tls_ca`, also complete a TLS handshake, so that the probe does not
    leave a handshake error in the server's log."""
    deadline = time.monotonic() + timeout
    ctx = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if ctx is None:
                    return
                with ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                    return
        except (OSError, ssl.SSLError):
            time.sleep(0.05)  # readiness poll interval
    text = log.read_text(errors="replace") if log and log.exists() else ""
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}\n{text}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path`; return their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def stop_tethered(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Close the pipe that keeps a tethered server alive and wait for it."""
    try:
        if proc.stdin:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# environment isolation: nothing from ~/.aws or the caller's AWS_* leaks in

_AWS_VARS_TO_DROP = [
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_REGION",
    "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "AWS_S3_ADDRESSING_STYLE", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_USE_FIPS_ENDPOINT",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "IBM_API_KEY_ID", "IBM_SERVICE_INSTANCE_ID", "IBM_AUTH_ENDPOINT",
    "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
]


@pytest.fixture(scope="session")
def session_dir():
    d = Path(tempfile.mkdtemp(prefix="s3gate-e2e-"))
    print(f"\ns3gate e2e session dir: {d}")
    yield d
    if os.environ.get("S3GATE_E2E_KEEP") != "1" and not _SESSION_FAILED:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_env(session_dir):
    """Point the AWS SDK config files of this process at files that do not
    exist and drop AWS_* settings that would change client behaviour."""
    saved = dict(os.environ)
    for v in _AWS_VARS_TO_DROP:
        os.environ.pop(v, None)
    os.environ["AWS_CONFIG_FILE"] = str(session_dir / "no-aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(session_dir / "no-aws-credentials")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    yield
    os.environ.clear()
    os.environ.update(saved)


def client_env(session_dir: Path, key: str = ALICE_KEY, secret: str = ALICE_SECRET) -> dict:
    """Environment for `aws` / `s3cmd` subprocesses: the venv's bin first on
    PATH, alice's credentials, no machine-wide AWS config."""
    env = {k: v for k, v in os.environ.items() if k not in _AWS_VARS_TO_DROP}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(session_dir / "home")
    (session_dir / "home").mkdir(exist_ok=True)
    env["AWS_ACCESS_KEY_ID"] = key
    env["AWS_SECRET_ACCESS_KEY"] = secret
    env["AWS_DEFAULT_REGION"] = REGION
    env["AWS_CONFIG_FILE"] = str(session_dir / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(session_dir / "no-aws-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_PAGER"] = ""
    # No client-side retries: a gateway error must show, not be retried away.
    env["AWS_RETRY_MODE"] = "standard"
    env["AWS_MAX_ATTEMPTS"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# --------------------------------------------------------------------------
# servers

@dataclasses.dataclass
class Upstream:
    name: str
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    def client(self):
        """A boto3 client straight to the upstream: the "direct look". One per
        upstream, made on first use (making a boto3 client costs ~0.1 s)."""
        key = (self.endpoint, self.region, self.access_key_id, self.secret_access_key)
        cached = _DIRECT_CLIENTS.get(key)
        if cached is not None:
            return cached
        _DIRECT_CLIENTS[key] = c = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"},
                          retries={"max_attempts": 2, "mode": "standard"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )
        return c


_DIRECT_CLIENTS: dict[tuple, object] = {}


def close_direct_clients(up: Upstream) -> None:
    """Close the cached direct clients of `up` (their keep-alive connections
    would hold a server's graceful shutdown: Garage waits for them)."""
    for key in [k for k in _DIRECT_CLIENTS if k[0] == up.endpoint]:
        _DIRECT_CLIENTS.pop(key).close()


@pytest.fixture(scope="session")
def garage(session_dir):
    proc = subprocess.Popen(
        [sys.executable, str(GARAGE_PY), str(session_dir / "garage"), "--bucket", GARAGE_BUCKET],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    line = proc.stdout.readline().decode()
    try:
        info = json.loads(line)
    except ValueError:
        stop_tethered(proc)
        log = session_dir / "garage" / "garage.log"
        raise RuntimeError(f"garage.py said {line!r}\n"
                           f"{log.read_text(errors='replace') if log.exists() else ''}")
    up = Upstream("garage", info["endpoint"], info["region"], info["access_key_id"],
                  info["secret_access_key"], GARAGE_BUCKET)
    yield up
    close_direct_clients(up)
    stop_tethered(proc)


@pytest.fixture(scope="session")
def moto(session_dir):
    port = free_port()
    log_path = session_dir / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TETHER_PY), str(VENV_BIN / "moto_server"), "-H", "127.0.0.1",
             "-p", str(port)],
            stdin=subprocess.PIPE, stdout=log, stderr=log,
        )
    try:
        wait_for_port(port, "moto_server", log_path, proc)
        up = Upstream("moto", f"http://127.0.0.1:{port}", REGION, MOTO_KEY, MOTO_SECRET, MOTO_BUCKET)
        up.client().create_bucket(Bucket=MOTO_BUCKET)
    except BaseException:
        stop_tethered(proc)
        raise
    yield up
    close_direct_clients(up)
    stop_tethered(proc)


@pytest.fixture(scope="session")
def tls_cert(session_dir):
    cert, key = session_dir / "cert.pem", session_dir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost",
         # <bucket>.localhost: virtual-hosted style (e2e/test_client_matrix.py)
         "-addext", f"subjectAltName=DNS:localhost,DNS:{GARAGE_BUCKET}.localhost,"
                    f"DNS:{MOTO_BUCKET}.localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@dataclasses.dataclass
class Gateway:
    name: str
    http_port: int
    https_port: int
    log_path: Path
    upstream: Upstream

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _start_gateway(session_dir: Path, up: Upstream, cert_key, credentials_yaml: str, extra_env: dict):
    cert, key = cert_key
    gdir = session_dir / f"gw-{up.name}"
    gdir.mkdir()
    http_port, https_port = free_port(), free_port()
    config = f"""listen:
  - address: 127.0.0.1:{http_port}
  - address: 127.0.0.1:{https_port}
    tls: {{ cert: {cert}, key: {key} }}
region: {REGION}
hostnames: [localhost]
principals:
  - name: alice
    access_key_id: {ALICE_KEY}
    secret_access_key: {ALICE_SECRET}
  - name: bob
    access_key_id: {BOB_KEY}
    secret_access_key: {{ file: {gdir / 'bob.secret'} }}
upstreams:
  up:
    kind: s3-compatible
    endpoint: {up.endpoint}
    region: {up.region}
    addressing: path
    credentials:
{credentials_yaml}
buckets:
  "*": {{ upstream: up }}
"""
    (gdir / "bob.secret").write_text(BOB_SECRET + "\n")
    config_path = gdir / "gateway.yaml"
    config_path.write_text(config)
    log_path = gdir / "gateway.log"
    GATEWAY_LOGS[up.name] = log_path
    env = dict(os.environ, **extra_env)
    env["NO_COLOR"] = "1"
    env.setdefault("S3GATE_LOG", "info,pingora_core=warn,pingora_proxy=warn")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TETHER_PY), str(S3GATE), "serve", "--config", str(config_path)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
        )
    try:
        wait_for_port(http_port, f"gateway {up.name} (http)", log_path, proc)
        wait_for_port(https_port, f"gateway {up.name} (https)", log_path, proc, tls_ca=cert)
    except BaseException:
        stop_tethered(proc)
        raise
    return proc, Gateway(up.name, http_port, https_port, log_path, up)


@pytest.fixture(scope="session")
def garage_gateway(session_dir, garage, tls_cert):
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    # The upstream secret comes from the environment here (`{ env: VAR }`),
    # the key id is a literal.
    creds = (f"      access_key_id: {garage.access_key_id}\n"
             f"      secret_access_key: {{ env: S3GATE_E2E_GARAGE_SECRET }}")
    proc, gw = _start_gateway(session_dir, garage, tls_cert, creds,
                              {"S3GATE_E2E_GARAGE_SECRET": garage.secret_access_key})
    yield gw
    stop_tethered(proc)


@pytest.fixture(scope="session")
def moto_gateway(session_dir, moto, tls_cert):
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    creds = (f"      access_key_id: {moto.access_key_id}\n"
             f"      secret_access_key: {moto.secret_access_key}")
    proc, gw = _start_gateway(session_dir, moto, tls_cert, creds, {})
    yield gw
    stop_tethered(proc)


# --------------------------------------------------------------------------
# the target fixture

@dataclasses.dataclass
class Target:
    id: str
    endpoint: str               # the gateway's URL for this target
    ca_bundle: Optional[str]    # path of the CA for https, None for http
    bucket: str
    upstream: Upstream
    gateway: Gateway
    session_dir: Path
    direct: Callable            # () -> boto3 client straight to the upstream

    @property
    def https(self) -> bool:
        return self.ca_bundle is not None

    @property
    def verify(self):
        return self.ca_bundle if self.ca_bundle else None

    def client(self, key: str = ALICE_KEY, secret: str = ALICE_SECRET, **config):
        """A boto3 client through the gateway (default settings otherwise)."""
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            verify=self.verify, config=cfg,
        )

    def env(self, key: str = ALICE_KEY, secret: str = ALICE_SECRET) -> dict:
        return client_env(self.session_dir, key, secret)

    def new_key(self, label: str) -> str:
        return f"e2e/{self.id}/{label}-{uuid.uuid4().hex[:10]}"


TARGETS = ["garage-http", "garage-https", "moto-http", "moto-https"]


@pytest.fixture(params=TARGETS)
def target(request, session_dir, tls_cert):
    upstream_name, scheme = request.param.split("-")
    gw: Gateway = request.getfixturevalue(f"{upstream_name}_gateway")
    https = scheme == "https"
    port = gw.https_port if https else gw.http_port
    # Remember where the logs were, so a failure shows only what it caused.
    request.node._gateway_log = (gw.log_path, gw.log_path.stat().st_size)
    return Target(
        id=request.param,
        endpoint=f"{scheme}://127.0.0.1:{port}",
        ca_bundle=str(tls_cert[0]) if https else None,
        bucket=gw.upstream.bucket,
        upstream=gw.upstream,
        gateway=gw,
        session_dir=session_dir,
        direct=gw.upstream.client,
    )


@pytest.fixture
def cleanup(target):
    """Register keys to delete (straight upstream) when the test ends, and
    abort any multipart upload the test left under its own prefix."""
    keys: list[str] = []
    yield keys
    direct = target.direct()
    for k in keys:
        try:
            direct.delete_object(Bucket=target.bucket, Key=k)
        except Exception:
            pass
    try:
        ups = direct.list_multipart_uploads(Bucket=target.bucket, Prefix=f"e2e/{target.id}/")
        for u in ups.get("Uploads", []):
            if any(u["Key"] == k for k in keys):
                direct.abort_multipart_upload(Bucket=target.bucket, Key=u["Key"], UploadId=u["UploadId"])
    except Exception:
        pass


# --------------------------------------------------------------------------
# reporting: show the gateway's log lines of a failing test

_SESSION_FAILED = False
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    global _SESSION_FAILED
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    _SESSION_FAILED = True
    where = getattr(item, "_gateway_log", None)
    if where is None:
        for name, path in GATEWAY_LOGS.items():
            rep.sections.append((f"gateway log ({name}) at {path}", ""))
        return
    path, start = where
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError as e:
        text = f"(cannot read: {e})"
    lines = [_ANSI.sub("", l) for l in text.splitlines()]
    if len(lines) > 200:
        lines = [f"... {len(lines) - 200} earlier lines cut ..."] + lines[-200:]
    rep.sections.append((f"gateway log during this test: {path}", "\n".join(lines)))
