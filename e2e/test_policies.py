"""IAM-shaped policies, enforced by s3gate in front of Garage.

This module starts its own Garage (bucket ``analytics-raw``) and a gateway
(plain HTTP only) whose ``policies.paths`` names a folder holding a copy of
the repository's egress example policy (``policies/egress/policy.yaml``). Principals ``etl`` and ``janitor`` call the gateway with boto3;
every decision is checked by its effect upstream, through a client that
talks to Garage directly. A second gateway with ``mode: shadow`` is started
only for the shadow-mode test.

Uploads are started through the gateway, which records their initiator, so
the fail-closed OnlyInitiator statement lets etl work on its own uploads.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (GATEWAY_LOGS, GARAGE_PY, REGION, REPO, S3GATE, TETHER_PY, Upstream,
                      close_direct_clients, free_port, stop_tethered, wait_for_port)

BUCKET = "analytics-raw"
OWNER = "111122223333"
ETL_KEY = "AKIAETL0000000000001"
ETL_SECRET = "etl-secret-000000000000000000000001"
JANITOR_KEY = "AKIAJANITOR000000001"
JANITOR_SECRET = "janitor-secret-00000000000000000001"

REPO_POLICY = REPO / "policies" / "egress" / "policy.yaml"

DENIED_LINE = "access denied by policy"


# --------------------------------------------------------------------------
# fixtures

@dataclasses.dataclass
class PolicyGateway:
    name: str
    endpoint: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, key: str | None, secret: str | None):
        """boto3 through this gateway: path style, us-east-1, no retries.
        `key=None` gives an unsigned (anonymous) client."""
        extra = {"signature_version": UNSIGNED} if key is None else {}
        cfg = Config(s3={"addressing_style": "path"},
                     retries={"total_max_attempts": 1, "mode": "standard"}, **extra)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

    def etl(self):
        return self.client(ETL_KEY, ETL_SECRET)

    def janitor(self):
        return self.client(JANITOR_KEY, JANITOR_SECRET)

    def log_lines_for(self, request_id: str, needle: str = DENIED_LINE,
                      timeout: float = 5) -> list[str]:
        """Lines of the log naming `request_id` and containing `needle`;
        polls briefly, since the log is another process's output."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log_text().splitlines()
                     if needle in l and request_id in l]
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)  # polling interval, not a synchronisation sleep


@pytest.fixture(scope="module")
def policy_dir(session_dir):
    """A folder with a copy of the example policy, read at test time."""
    src = REPO_POLICY
    # The repository's own file, never one from elsewhere on the machine.
    assert src.resolve().is_relative_to(REPO.resolve()) and src.is_file(), src
    d = session_dir / "policies-example"
    d.mkdir()
    shutil.copyfile(src, d / src.name)
    return d


@pytest.fixture(scope="module")
def pgarage(session_dir):
    gdir = session_dir / "garage-policies"
    proc = subprocess.Popen(
        [sys.executable, str(GARAGE_PY), str(gdir), "--bucket", BUCKET],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    line = proc.stdout.readline().decode()
    try:
        info = json.loads(line)
    except ValueError:
        stop_tethered(proc)
        log = gdir / "garage.log"
        raise RuntimeError(f"garage.py said {line!r}\n"
                           f"{log.read_text(errors='replace') if log.exists() else ''}")
    up = Upstream("garage-policies", info["endpoint"], info["region"], info["access_key_id"],
                  info["secret_access_key"], BUCKET)
    yield up
    close_direct_clients(up)
    stop_tethered(proc)


def _start_policy_gateway(session_dir: Path, up: Upstream, policy_dir: Path, mode: str):
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    name = f"policies-{mode}"
    gdir = session_dir / f"gw-{name}"
    gdir.mkdir()
    port = free_port()
    config = f"""listen:
  - address: 127.0.0.1:{port}
region: {REGION}
hostnames: [localhost]
policies:
  paths: [{policy_dir}]
  mode: {mode}
principals:
  - {{ name: etl, access_key_id: {ETL_KEY}, secret_access_key: {ETL_SECRET} }}
  - {{ name: janitor, access_key_id: {JANITOR_KEY}, secret_access_key: {JANITOR_SECRET} }}
upstreams:
  up:
    kind: s3-compatible
    endpoint: {up.endpoint}
    region: {up.region}
    addressing: path
    credentials:
      access_key_id: {up.access_key_id}
      secret_access_key: {up.secret_access_key}
buckets:
  {BUCKET}:
    upstream: up
    owner: "{OWNER}"
    expected_bucket_owner: passthrough
    request_payer: allow
  "*": {{ upstream: up }}
"""
    config_path = gdir / "gateway.yaml"
    config_path.write_text(config)
    log_path = gdir / "gateway.log"
    GATEWAY_LOGS[name] = log_path
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.setdefault("S3GATE_LOG", "info,pingora_core=warn,pingora_proxy=warn")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TETHER_PY), str(S3GATE), "serve", "--config", str(config_path)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
        )
    try:
        wait_for_port(port, f"gateway {name} (http)", log_path, proc)
    except BaseException:
        stop_tethered(proc)
        raise
    return proc, PolicyGateway(name, f"http://127.0.0.1:{port}", log_path)


@pytest.fixture(scope="module")
def gw(session_dir, pgarage, policy_dir):
    proc, g = _start_policy_gateway(session_dir, pgarage, policy_dir, "enforce")
    yield g
    stop_tethered(proc)


@pytest.fixture(scope="module")
def shadow_gw(session_dir, pgarage, policy_dir):
    proc, g = _start_policy_gateway(session_dir, pgarage, policy_dir, "shadow")
    yield g
    stop_tethered(proc)


@pytest.fixture(scope="module")
def direct(pgarage):
    return pgarage.client()


@pytest.fixture(autouse=True)
def _show_log_of_this_test(request, gw):
    """Let conftest's report hook show what the (enforcing) gateway logged
    while a failing test ran."""
    request.node._gateway_log = (gw.log_path, gw.log_path.stat().st_size)


@pytest.fixture
def uploads(direct):
    """Register (key, upload_id) pairs; whatever is still open upstream at
    the end of the test is aborted directly."""
    made: list[tuple[str, str]] = []
    yield made
    for key, uid in made:
        try:
            direct.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
        except ClientError:
            pass


# --------------------------------------------------------------------------
# helpers

def new_key(prefix: str, label: str) -> str:
    return f"{prefix}/e2e-{label}-{uuid.uuid4().hex[:10]}"


def error_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def status(resp_or_err) -> int:
    meta = (resp_or_err.response if isinstance(resp_or_err, ClientError) else resp_or_err)
    return meta["ResponseMetadata"]["HTTPStatusCode"]


def request_id(resp_or_err) -> str:
    meta = (resp_or_err.response if isinstance(resp_or_err, ClientError) else resp_or_err)
    return meta["ResponseMetadata"]["HTTPHeaders"].get("x-s3gate-request-id", "")


def assert_denied(excinfo) -> ClientError:
    e = excinfo.value
    assert status(e) == 403, e.response
    assert error_code(e) == "AccessDenied", e.response
    return e


def names_statement(line: str, sid: str) -> bool:
    """The denial line names the statement as `<policy file>#<Sid>`."""
    return re.search(r"\S+\.ya?ml#" + re.escape(sid) + r"\b", line) is not None


def uploads_under(direct, prefix: str) -> list[dict]:
    return direct.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def direct_parts(direct, key: str, uid: str) -> list[dict]:
    return direct.list_parts(Bucket=BUCKET, Key=key, UploadId=uid).get("Parts", [])


def assert_upload_gone(direct, key: str, uid: str) -> None:
    with pytest.raises(ClientError) as ei:
        direct.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert error_code(ei.value) == "NoSuchUpload", ei.value.response
    assert not [u for u in uploads_under(direct, key) if u["UploadId"] == uid]


def start_ingest_upload(gw: PolicyGateway, uploads, label: str, part: bytes = b"p" * 1024):
    """etl: create an upload under ingest/ and upload part 1."""
    etl = gw.etl()
    key = new_key("ingest", label)
    uid = etl.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    uploads.append((key, uid))
    etl.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1, Body=part)
    return key, uid


# --------------------------------------------------------------------------
# tests

def test_etl_multipart_only_under_ingest(gw, direct, uploads):
    etl = gw.etl()
    key = new_key("ingest", "mpu")
    resp = etl.create_multipart_upload(Bucket=BUCKET, Key=key)
    uid = resp["UploadId"]
    uploads.append((key, uid))
    part = b"x" * 4096
    etl.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1, Body=part)
    listed = etl.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert [p["PartNumber"] for p in listed.get("Parts", [])] == [1]
    # Upstream: the upload and its part are really there.
    assert [u["UploadId"] for u in uploads_under(direct, key)] == [uid]
    parts = direct_parts(direct, key, uid)
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(part))]

    # Outside ingest/: refused, nothing reaches Garage.
    prefix = f"other/e2e-{uuid.uuid4().hex[:10]}/"
    other = prefix + "x"
    with pytest.raises(ClientError) as ei:
        etl.create_multipart_upload(Bucket=BUCKET, Key=other)
    e = assert_denied(ei)
    assert uploads_under(direct, prefix) == []
    lines = gw.log_lines_for(request_id(e))
    assert lines, f"no '{DENIED_LINE}' line for request {request_id(e)}"
    assert "no statement allows it" in lines[0], lines


def test_etl_abort_needs_expected_bucket_owner(gw, direct, uploads):
    key, uid = start_ingest_upload(gw, uploads, "abort")
    etl = gw.etl()

    with pytest.raises(ClientError) as ei:
        etl.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    e = assert_denied(ei)
    lines = gw.log_lines_for(request_id(e))
    assert lines and names_statement(lines[0], "OwnerMustBeAsserted"), lines
    # Still there upstream, with its part.
    assert [p["PartNumber"] for p in direct_parts(direct, key, uid)] == [1]

    resp = etl.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                      ExpectedBucketOwner=OWNER)
    assert status(resp) == 204
    assert_upload_gone(direct, key, uid)


def test_janitor_cleans_up_but_cannot_write(gw, direct, uploads):
    key, uid = start_ingest_upload(gw, uploads, "janitor")
    janitor = gw.janitor()

    listed = janitor.list_multipart_uploads(Bucket=BUCKET, Prefix="ingest/")
    assert uid in [u["UploadId"] for u in listed.get("Uploads", [])]

    resp = janitor.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                          ExpectedBucketOwner=OWNER)
    assert status(resp) == 204
    assert_upload_gone(direct, key, uid)

    obj = new_key("ingest", "janitor-put")
    with pytest.raises(ClientError) as ei:
        janitor.put_object(Bucket=BUCKET, Key=obj, Body=b"nope")
    assert_denied(ei)
    with pytest.raises(ClientError) as ei:
        direct.head_object(Bucket=BUCKET, Key=obj)
    assert status(ei.value) == 404


def test_requester_pays_is_refused(gw, direct, uploads):
    etl = gw.etl()
    key = new_key("ingest", "payer")
    uid = etl.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    uploads.append((key, uid))

    with pytest.raises(ClientError) as ei:
        etl.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                        Body=b"y" * 1024, RequestPayer="requester")
    e = assert_denied(ei)
    lines = gw.log_lines_for(request_id(e))
    assert lines and names_statement(lines[0], "NoRequesterPaysCharges"), lines
    assert direct_parts(direct, key, uid) == []


def test_shadow_mode_logs_but_allows(shadow_gw, direct, uploads):
    etl = shadow_gw.etl()
    prefix = f"other/e2e-shadow-{uuid.uuid4().hex[:10]}/"
    key = prefix + "x"
    resp = etl.create_multipart_upload(Bucket=BUCKET, Key=key)
    uid = resp["UploadId"]
    uploads.append((key, uid))

    assert [u["UploadId"] for u in uploads_under(direct, prefix)] == [uid]
    rid = request_id(resp)
    assert rid, resp["ResponseMetadata"]
    lines = shadow_gw.log_lines_for(rid)
    assert lines, f"no '{DENIED_LINE}' line for request {rid}:\n{shadow_gw.log_text()}"
    assert re.search(r'mode="?shadow"?', lines[0]), lines

    direct.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    assert uploads_under(direct, prefix) == []


def test_anonymous_list_is_refused(gw):
    anon = gw.client(None, None)
    with pytest.raises(ClientError) as ei:
        anon.list_objects_v2(Bucket=BUCKET)
    e = assert_denied(ei)
    lines = gw.log_lines_for(request_id(e))
    assert lines and 'principal="anonymous"' in lines[0], lines
