"""The client matrix: every client of the README's Clients table runs the
same plan through the gateway to Garage, over HTTP and HTTPS, path style and
virtual-hosted style (`<bucket>.localhost`) where the client has it.

The plan, in three phases (each a separate run of the client):

* write: CreateBucket + DeleteBucket of a new bucket (path style), PUT of
  keys with a space, a `+` and unicode, a server-side copy, a multipart
  upload of a stream of unknown size (5 MiB parts), and an upload that is
  started, given one part and aborted;
* read: GET of every object, a ranged GET, a listing with prefix and
  delimiter and one without, presigned GET and PUT URLs (fetched here);
* delete: every object, and a listing that comes back empty.

After each phase a client that goes straight to Garage checks the effect:
bytes compared with the source, parts counted, the aborted upload gone.
A client that lacks an operation says so in its `lacks`; a mode it cannot
run is skipped with the reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import ALICE_KEY, ALICE_SECRET, REGION, Gateway, client_env, write_random_file
from test_clients import direct_head, s3cmd_config
from test_trust import _garage_allow_create_bucket

MiB = 1024 * 1024
E2E = Path(__file__).resolve().parent
CLIENTS_DIR = E2E / "clients"

# Keys relative to the plan's prefix.
OBJECTS = {
    "plain.txt": 5000,
    "dir/with space.txt": 1201,
    "dir/plus+sign.txt": 333,
    "dir/ünïcødé ☃.txt": 2048,
}
COPY = ("dir/ünïcødé ☃.txt", "copy of ü+.txt")
STREAM_KEY = "stream/unknown size ü+.bin"
STREAM_SIZE = 10 * MiB + 4097          # 5 MiB parts: 3 parts (2 for some clients)
PART = 5 * MiB
RANGE = ("plain.txt", 1000, 2999)
PRESIGN = ("plain.txt", "presigned put ü+ x.txt")
ABORT = "aborted ü+.bin"
LIST_UNDER = "dir/"

ALL_OPS = {"bucket", "put", "copy", "stream", "abort", "get", "range", "list",
           "presign_get", "presign_put", "delete"}


# --------------------------------------------------------------------------
# modes

MODES = ["http", "https", "vhost-http", "vhost-https"]


@dataclasses.dataclass
class Mode:
    name: str
    endpoint: str        # what the client is given
    ca: str | None       # PEM for https
    virtual: bool
    gateway: Gateway
    session_dir: Path

    @property
    def https(self) -> bool:
        return self.ca is not None

    @property
    def bucket(self) -> str:
        return self.gateway.upstream.bucket

    def direct(self):
        return self.gateway.upstream.client()


@pytest.fixture(params=MODES)
def mode(request, garage_gateway, tls_cert, session_dir):
    name = request.param
    https = name.endswith("https")
    virtual = name.startswith("vhost")
    port = garage_gateway.https_port if https else garage_gateway.http_port
    host = "localhost" if virtual else "127.0.0.1"
    request.node._gateway_log = (garage_gateway.log_path, garage_gateway.log_path.stat().st_size)
    return Mode(name, f"{'https' if https else 'http'}://{host}:{port}",
                str(tls_cert[0]) if https else None, virtual, garage_gateway, session_dir)


def vhost_resolves(bucket: str) -> bool:
    """Whether this machine's resolver knows <bucket>.localhost (clients that
    cannot be given their own resolver need it for virtual-hosted style)."""
    try:
        return any(a[4][0] in ("127.0.0.1", "::1")
                   for a in socket.getaddrinfo(f"{bucket}.localhost", 80))
    except OSError:
        return False


# --------------------------------------------------------------------------
# the plan

@pytest.fixture(scope="session")
def stream_file(session_dir):
    path = session_dir / "matrix-stream.bin"
    write_random_file(path, STREAM_SIZE)
    return path


@pytest.fixture
def plan(request, mode, stream_file, session_dir):
    """Write the plan's files and JSON into a scratch dir; remove, straight
    upstream, whatever the test left under its prefix."""
    work = session_dir / "matrix" / uuid.uuid4().hex[:10]
    work.mkdir(parents=True)
    objects = {}
    for i, (name, size) in enumerate(OBJECTS.items()):
        p = work / f"object-{i}"
        p.write_bytes(os.urandom(size))
        objects[name] = str(p)
    new_bucket = None
    if not mode.virtual:
        # A name outside the TLS certificate's names is fine in path style.
        _garage_allow_create_bucket(session_dir, mode.gateway.upstream)
        new_bucket = f"e2e-mx-{uuid.uuid4().hex[:12]}"
    client = request.node.callspec.params["client"]
    p = {
        "endpoint": mode.endpoint, "virtual": mode.virtual, "ca": mode.ca, "region": None,
        "access_key": ALICE_KEY, "secret_key": ALICE_SECRET,
        "bucket": mode.bucket, "prefix": f"mx/{client}-{mode.name}-{uuid.uuid4().hex[:8]}/",
        "new_bucket": new_bucket, "objects": objects, "list_prefix": LIST_UNDER,
        "copy": {"from": COPY[0], "to": COPY[1]},
        "stream": {"key": STREAM_KEY, "path": str(stream_file), "part_size": PART},
        "range": {"key": RANGE[0], "first": RANGE[1], "last": RANGE[2]},
        "presign": {"get": PRESIGN[0], "put": PRESIGN[1]},
        "abort": ABORT,
        "_work": str(work),
    }
    yield p
    direct = mode.direct()
    r = direct.list_objects_v2(Bucket=mode.bucket, Prefix=p["prefix"])
    for o in r.get("Contents", []):
        direct.delete_object(Bucket=mode.bucket, Key=o["Key"])
    for u in direct.list_multipart_uploads(Bucket=mode.bucket, Prefix=p["prefix"]).get("Uploads", []):
        direct.abort_multipart_upload(Bucket=mode.bucket, Key=u["Key"], UploadId=u["UploadId"])
    shutil.rmtree(work, ignore_errors=True)


def plan_file(plan) -> Path:
    path = Path(plan["_work"]) / "plan.json"
    path.write_text(json.dumps({k: v for k, v in plan.items() if not k.startswith("_")}))
    return path


def sha256_path(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# checks, straight at Garage

def direct_body(mode, key) -> bytes:
    return mode.direct().get_object(Bucket=mode.bucket, Key=key)["Body"].read()


def check_write(mode, plan, out, lacks):
    P = plan["prefix"]
    direct = mode.direct()
    if plan["new_bucket"] and "bucket" not in lacks:
        assert out.get("bucket_created"), out
        names = {b["Name"] for b in direct.list_buckets()["Buckets"]}
        assert plan["new_bucket"] not in names, "the new bucket should be deleted again"
    for name, path in plan["objects"].items():
        assert direct_body(mode, P + name) == Path(path).read_bytes(), name
    if "copy" not in lacks:
        assert direct_body(mode, P + COPY[1]) == Path(plan["objects"][COPY[0]]).read_bytes()
    if "stream" not in lacks:
        head = direct_head(mode, P + STREAM_KEY)
        assert head is not None, "the stream was not uploaded"
        assert head["ContentLength"] == STREAM_SIZE
        # A multipart upload; how many parts is the client's choice.
        parts = head["ETag"].strip('"').rpartition("-")[2]
        assert parts.isdigit() and int(parts) >= 2, head["ETag"]
        assert hashlib.sha256(direct_body(mode, P + STREAM_KEY)).hexdigest() == sha256_path(plan["stream"]["path"])
    if "abort" not in lacks:
        assert out.get("upload_id"), out
        ups = direct.list_multipart_uploads(Bucket=mode.bucket, Prefix=P).get("Uploads", [])
        assert [u for u in ups if u["UploadId"] == out["upload_id"]] == [], ups
        assert direct_head(mode, P + ABORT) is None


def expected_keys(plan, lacks, presigned_put=False):
    names = set(plan["objects"])
    if "copy" not in lacks:
        names.add(COPY[1])
    if "stream" not in lacks:
        names.add(STREAM_KEY)
    if presigned_put:
        names.add(PRESIGN[1])
    return names


def check_read(mode, plan, out, lacks):
    P = plan["prefix"]
    want = {P + n: sha256_path(p) for n, p in plan["objects"].items()}
    if "copy" not in lacks:
        want[P + COPY[1]] = sha256_path(plan["objects"][COPY[0]])
    if "stream" not in lacks:
        want[P + STREAM_KEY] = sha256_path(plan["stream"]["path"])
    got = {k: v for k, v in out["sha256"].items() if k in want}
    assert got == want
    if "range" not in lacks:
        data = Path(plan["objects"][RANGE[0]]).read_bytes()
        assert bytes.fromhex(out["range"]) == data[RANGE[1]:RANGE[2] + 1]
    top_keys = {P + n for n in expected_keys(plan, lacks) if "/" not in n}
    top_prefixes = {P + n.split("/")[0] + "/" for n in expected_keys(plan, lacks) if "/" in n}
    assert set(out["delimited"]["keys"]) == top_keys, out["delimited"]
    assert set(out["delimited"]["prefixes"]) == top_prefixes, out["delimited"]
    assert sorted(out["under"]) == sorted(P + n for n in plan["objects"] if n.startswith(LIST_UNDER))
    if "presign_get" not in lacks:
        host = urllib.parse.urlsplit(out["presigned_get"]).hostname
        assert host == (f"{mode.bucket}.localhost" if mode.virtual else "127.0.0.1"), out["presigned_get"]
        status, body = http_call(mode, out["presigned_get"], "GET")
        assert status == 200, body[:2000]
        assert body == Path(plan["objects"][PRESIGN[0]]).read_bytes()
    if "presign_put" not in lacks:
        data = os.urandom(777)
        status, body = http_call(mode, out["presigned_put"], "PUT", data)
        assert status == 200, body[:2000]
        assert direct_body(mode, P + PRESIGN[1]) == data


def check_delete(mode, plan, out, lacks):
    assert out.get("left", []) == [], out
    r = mode.direct().list_objects_v2(Bucket=mode.bucket, Prefix=plan["prefix"])
    assert r.get("KeyCount", 0) == 0, [o["Key"] for o in r.get("Contents", [])]


def http_call(mode, url: str, method: str, body: bytes | None = None):
    """One request to a (presigned) URL: connect to loopback whatever the URL's
    host (<bucket>.localhost), keep the host for Host and SNI."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection(("127.0.0.1", u.port), timeout=60)
    if u.scheme == "https":
        sock = ssl.create_default_context(cafile=mode.ca).wrap_socket(sock, server_hostname=u.hostname)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.sock = sock
    try:
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------
# clients

def run_json(cmd, env, timeout=300) -> dict:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
                               f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-8000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def driver_env(mode) -> dict:
    env = client_env(mode.session_dir)
    # Only loopback bypasses a proxy the machine may set; drivers resolve
    # *.localhost themselves.
    for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(v, None)
    return env


class Driver:
    """A client run as a program: `<cmd> write|read|delete plan.json`."""
    lacks: set = set()
    virtual = True

    def cmd(self) -> list:
        raise NotImplementedError

    def env(self, mode) -> dict:
        return driver_env(mode)

    def __call__(self, phase, mode, plan):
        return run_json(self.cmd() + [phase, str(plan_file(plan))], self.env(mode))


class NodeDriver(Driver):
    def __init__(self, script):
        self.script = script

    def cmd(self):
        modules = os.environ.get("S3GATE_NODE_MODULES")
        node = shutil.which("node")
        if not modules or not Path(modules).is_dir() or node is None:
            pytest.skip("Node or the npm clients are missing: run .ci/setup "
                        "(it installs them and sets S3GATE_NODE_MODULES in env.sh)")
        return [node, str(CLIENTS_DIR / self.script)]

    def env(self, mode):
        env = driver_env(mode)
        env["NODE_PATH"] = os.environ["S3GATE_NODE_MODULES"]
        return env


class MinioGo(Driver):
    DEFAULT_KEY = "stream/default options ü.bin"

    def extend_plan(self, mode, plan):
        # The same stream again with minio-go's default options, as mc
        # uploads a pipe: one part (of up to ~576 MiB) in a multipart
        # upload, CRC32C checksums, no region set.
        plan["stream"]["default_key"] = self.DEFAULT_KEY

    def check_write(self, mode, plan, out):
        key = plan["prefix"] + self.DEFAULT_KEY
        assert out["default_stream_etag"].strip('"').endswith("-1"), out
        assert hashlib.sha256(direct_body(mode, key)).hexdigest() == sha256_path(plan["stream"]["path"])

    def cmd(self):
        exe = os.environ.get("S3GATE_MINIO_GO")
        if not exe or not os.access(exe, os.X_OK):
            pytest.skip("the minio-go driver is not built: run .ci/setup "
                        "(it builds e2e/clients/minio-go and sets S3GATE_MINIO_GO in env.sh)")
        return [exe]


CLIENTS = {
    "aws-sdk-js-v3": NodeDriver("aws_sdk_js.js"),
    "minio-js": NodeDriver("minio_js.js"),
    "minio-go": MinioGo(),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client(client, mode, plan):
    c = CLIENTS[client]
    if mode.virtual and c.virtual is not True:
        pytest.skip(f"{client}: no virtual-hosted style here ({c.virtual})")
    extra = getattr(c, "extend_plan", None)
    if extra:
        extra(mode, plan)
    out = c("write", mode, plan)
    check_write(mode, plan, out, c.lacks)
    check_extra = getattr(c, "check_write", None)
    if check_extra:
        check_extra(mode, plan, out)
    out = c("read", mode, plan)
    check_read(mode, plan, out, c.lacks)
    out = c("delete", mode, plan)
    check_delete(mode, plan, out, c.lacks)
