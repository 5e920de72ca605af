"""Attacks on the gateway have no effect upstream (moto and Garage).

For each upstream, this module creates its own buckets directly upstream
(a data bucket, an empty bucket and the ownership state bucket) and starts
its own gateway (plain HTTP) with a policy, the catch-all bucket route, and
`multipart.ownership` kept in the state bucket under ``owners/``. Attack
requests are signed with botocore's SigV4 and sent with http.client, so the
path and query reach the gateway exactly as written; every test then looks
at the upstream directly, with the upstream's own credentials.

Principals: ``alice`` (``s3:*`` on ``*``, with a few explicit denies),
``bob`` (uploads and a few deletes, never reads or lists), ``janitor``
(named only by the initiator rule's ``NotPrincipal``), and anonymous
(``GetObject`` on ``public/*``).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET, GATEWAY_LOGS, REGION,
                      S3GATE, TETHER_PY, Upstream, free_port, stop_tethered, wait_for_port)

JANITOR_KEY = "AKIAJANITOR000000003"
JANITOR_SECRET = "janitor-secret-for-tests-000000000000003"

STATE_PREFIX = "owners/"

POLICY = """\
Version: "2012-10-17"
Statement:
  - Sid: AliceEverything
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"

  - Sid: AliceDeletesTmp
    Effect: Allow
    Principal: alice
    Action: s3:DeleteObject
    Resource: arn:aws:s3:::{bkt}/tmp/*

  - Sid: AliceKeepsKeep
    Effect: Deny
    Principal: alice
    Action: s3:DeleteObject
    Resource: arn:aws:s3:::{bkt}/keep/*

  - Sid: BobUploads
    Effect: Allow
    Principal: bob
    Action: [s3:PutObject, s3:ListMultipartUploadParts, s3:AbortMultipartUpload]
    Resource: arn:aws:s3:::{bkt}/*

  - Sid: BobDeletesTmp
    Effect: Allow
    Principal: bob
    Action: s3:DeleteObject
    Resource: arn:aws:s3:::{bkt}/tmp/*

  - Sid: BobWritesInEmpty
    Effect: Allow
    Principal: bob
    Action: [s3:PutObject, s3:DeleteObject]
    Resource: arn:aws:s3:::{empty}/*

  - Sid: OnlyInitiator
    Effect: Deny
    NotPrincipal: janitor
    Action: [s3:AbortMultipartUpload, s3:PutObject, s3:ListMultipartUploadParts]
    Resource: arn:aws:s3:::{bkt}/*
    Condition:
      "Null": {{ s3gate:MultipartInitiator: "false" }}
      StringNotEquals: {{ s3gate:MultipartInitiator: self }}

  - Sid: NoBigPuts
    Effect: Deny
    Principal: "*"
    Action: s3:PutObject
    Resource: arn:aws:s3:::{bkt}/big/*
    Condition:
      NumericGreaterThan: {{ s3gate:ContentLength: 1000 }}

  # README: "*" is every authenticated principal; unsigned requests are
  # `anonymous`.
  - Sid: PublicRead
    Effect: Allow
    Principal: anonymous
    Action: s3:GetObject
    Resource: arn:aws:s3:::{bkt}/public/*
"""

LIFECYCLE_XML = (b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                 b'<Rule><ID>wipe</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>'
                 b'<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>')
CORS_XML = (b'<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule>'
            b'<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>'
            b'</CORSRule></CORSConfiguration>')
WEBSITE_XML = (b'<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
               b'<IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>')


# --------------------------------------------------------------------------
# raw, botocore-signed HTTP

class _Signer(S3SigV4Auth):
    """S3 SigV4 with a chosen x-amz-content-sha256 (e.g. UNSIGNED-PAYLOAD)."""

    def __init__(self, key: str, secret: str, payload_hash: Optional[str]):
        super().__init__(Credentials(key, secret), "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash or super().payload(request)


@dataclasses.dataclass
class Resp:
    status: int
    headers: dict
    body: bytes

    @property
    def code(self) -> str:
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else ""

    def __str__(self) -> str:
        return f"{self.status} {self.body[:600]!r}"


def raw(endpoint: str, method: str, target: str, *, who: Optional[tuple[str, str]] = None,
        body: bytes = b"", headers: Optional[dict] = None,
        payload_hash: Optional[str] = None) -> Resp:
    """Send `method target` (path and query exactly as given) to the
    gateway, signed for `who` = (key, secret), or unsigned when None."""
    url = endpoint + target
    hdrs = dict(headers or {})
    if body or method in ("PUT", "POST"):
        hdrs["Content-Length"] = str(len(body))
    if who is not None:
        req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        _Signer(who[0], who[1], payload_hash).add_auth(req)
        hdrs = dict(req.headers.items())
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host="Host" in hdrs or "host" in hdrs,
                        skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def md5_header(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


# --------------------------------------------------------------------------
# fixtures

@dataclasses.dataclass
class TrustGateway:
    name: str
    endpoint: str
    log_path: Path
    upstream: Upstream
    bkt: str
    empty: str
    state: str

    def client(self, key: Optional[str], secret: Optional[str]):
        extra = {"signature_version": UNSIGNED} if key is None else {}
        cfg = Config(s3={"addressing_style": "path"},
                     retries={"total_max_attempts": 1, "mode": "standard"}, **extra)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

    def alice(self):
        return self.client(ALICE_KEY, ALICE_SECRET)

    def bob(self):
        return self.client(BOB_KEY, BOB_SECRET)

    def direct(self):
        return self.upstream.client()

    def raw(self, method: str, target: str, who: str | None = None, **kw) -> Resp:
        creds = {"alice": (ALICE_KEY, ALICE_SECRET), "bob": (BOB_KEY, BOB_SECRET), None: None}
        return raw(self.endpoint, method, target, who=creds[who], **kw)


def _garage_allow_create_bucket(session_dir: Path, up: Upstream) -> None:
    """The session's Garage key may not create buckets: allow it, with
    Garage's CLI, on the session Garage's own config."""
    conf = session_dir / "garage" / "garage.toml"
    garage = next(c for c in [os.environ.get("GARAGE_BIN"), shutil.which("garage"),
                              os.path.expanduser("~/.cache/s3gate/garage-2.5.0/bin/garage")]
                  if c and os.path.exists(c))
    subprocess.run([garage, "-c", str(conf), "key", "allow", "--create-bucket",
                    up.access_key_id], check=True, capture_output=True)


def _start_trust_gateway(session_dir: Path, up: Upstream) -> tuple:
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    tag = uuid.uuid4().hex[:6]
    bkt, empty, state = (f"trust-{up.name}-{n}-{tag}" for n in ("data", "empty", "state"))
    direct = up.client()
    if up.name == "garage":
        _garage_allow_create_bucket(session_dir, up)
    for b in (bkt, empty, state):
        direct.create_bucket(Bucket=b)

    name = f"trust-{up.name}"
    gdir = session_dir / f"gw-{name}"
    gdir.mkdir()
    pdir = gdir / "policies"
    pdir.mkdir()
    (pdir / "trust.yaml").write_text(POLICY.format(bkt=bkt, empty=empty))
    port = free_port()
    config = f"""listen:
  - address: 127.0.0.1:{port}
region: {REGION}
hostnames: [localhost]
policies:
  paths: [{pdir}]
  mode: enforce
principals:
  - {{ name: alice, access_key_id: {ALICE_KEY}, secret_access_key: {ALICE_SECRET} }}
  - {{ name: bob, access_key_id: {BOB_KEY}, secret_access_key: {BOB_SECRET} }}
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
  "*": {{ upstream: up }}
multipart:
  ownership: {{ store: s3, upstream: up, bucket: {state}, prefix: {STATE_PREFIX} }}
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
    return proc, TrustGateway(name, f"http://127.0.0.1:{port}", log_path, up, bkt, empty, state)


@pytest.fixture(scope="module", params=["moto", "garage"])
def gw(request, session_dir):
    up: Upstream = request.getfixturevalue(request.param)
    proc, g = _start_trust_gateway(session_dir, up)
    yield g
    stop_tethered(proc)
    direct = g.direct()
    try:
        for u in direct.list_multipart_uploads(Bucket=g.bkt).get("Uploads", []):
            direct.abort_multipart_upload(Bucket=g.bkt, Key=u["Key"], UploadId=u["UploadId"])
    except ClientError:
        pass


@pytest.fixture(autouse=True)
def _show_log_of_this_test(request, gw):
    request.node._gateway_log = (gw.log_path, gw.log_path.stat().st_size)


# --------------------------------------------------------------------------
# helpers

def new_key(prefix: str, label: str) -> str:
    return f"{prefix}/{label}-{uuid.uuid4().hex[:10]}"


def code_of(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def status_of(e: ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def exists(direct, bucket: str, key: str) -> bool:
    try:
        direct.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if status_of(e) == 404:
            return False
        raise


def all_keys(direct, bucket: str) -> list[str]:
    return [o["Key"] for o in direct.list_objects_v2(Bucket=bucket).get("Contents", [])]


def assert_refused(r: Resp, status: int, code: str) -> None:
    assert (r.status, r.code) == (status, code), str(r)


def swapped(upload_id: str) -> str:
    s = upload_id.swapcase()
    assert s != upload_id, upload_id
    return s


# --------------------------------------------------------------------------
# 1. empty upload ids

def test_empty_upload_id_is_refused(gw):
    d = gw.direct()
    key = new_key("t1", "obj")
    secret = b"secret content " + uuid.uuid4().hex.encode()
    d.put_object(Bucket=gw.bkt, Key=key, Body=secret)
    target = f"/{gw.bkt}/{key}?uploadId="

    # bob may list parts of and abort uploads, but neither read nor delete.
    r = gw.raw("GET", target, "bob")
    assert_refused(r, 400, "InvalidArgument")
    assert secret not in r.body
    r = gw.raw("DELETE", target, "bob")
    assert_refused(r, 400, "InvalidArgument")

    assert d.get_object(Bucket=gw.bkt, Key=key)["Body"].read() == secret


# --------------------------------------------------------------------------
# 2. keys with a leading slash

def _no_bucket_config(d, bucket: str, upstream: str) -> None:
    """Nothing set on the bucket: each getter says NoSuch…, or (Garage's
    website getter) answers with an empty configuration. A getter the
    upstream does not implement (NotImplemented) cannot tell."""
    checks = [
        (d.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", ("Rules",)),
        (d.get_bucket_cors, "NoSuchCORSConfiguration", ("CORSRules",)),
        (d.get_bucket_website, "NoSuchWebsiteConfiguration",
         ("IndexDocument", "ErrorDocument", "RedirectAllRequestsTo", "RoutingRules")),
    ]
    for get, missing, fields in checks:
        try:
            got = get(Bucket=bucket)
        except ClientError as e:
            if code_of(e) == "NotImplemented":
                continue
            assert code_of(e) == missing, (upstream, get.__name__, e.response)
        else:
            set_fields = {f: got[f] for f in fields if got.get(f)}
            assert not set_fields, f"{upstream}: {get.__name__} found {set_fields}"


def test_leading_slash_keys_are_refused(gw):
    d = gw.direct()
    secret_key = new_key("secret", "s")
    d.put_object(Bucket=gw.bkt, Key=secret_key, Body=b"s")
    _no_bucket_config(d, gw.bkt, gw.upstream.name)   # the baseline is checkable
    before = set(all_keys(d, gw.bkt))
    x = f"x-{uuid.uuid4().hex[:8]}"

    # PutObject of "/x" (bob may put anything in the bucket).
    r = gw.raw("PUT", f"/{gw.bkt}//{x}", "bob", body=b"slash")
    assert_refused(r, 400, "InvalidArgument")
    r = gw.raw("GET", f"/{gw.bkt}//{x}", "alice")
    assert_refused(r, 400, "InvalidArgument")

    # Bucket sub-resources behind key "/".
    for sub, doc in (("lifecycle", LIFECYCLE_XML), ("cors", CORS_XML),
                     ("website", WEBSITE_XML)):
        r = gw.raw("PUT", f"/{gw.bkt}//?{sub}", "bob", body=doc, headers=md5_header(doc))
        assert_refused(r, 400, "InvalidArgument")
        r = gw.raw("GET", f"/{gw.bkt}//?{sub}", "bob")
        assert_refused(r, 400, "InvalidArgument")

    # A listing behind key "/" (bob may not list).
    r = gw.raw("GET", f"/{gw.bkt}//?prefix=secret%2F", "bob")
    assert_refused(r, 400, "InvalidArgument")
    assert secret_key.encode() not in r.body and b"<Contents>" not in r.body

    # Upstream: nothing configured, nothing written.
    _no_bucket_config(d, gw.bkt, gw.upstream.name)
    assert set(all_keys(d, gw.bkt)) == before
    assert not exists(d, gw.bkt, x)


def test_leading_slash_cannot_delete_a_bucket(gw):
    d = gw.direct()
    # bob may put and delete objects in the empty bucket, never the bucket.
    r = gw.raw("DELETE", f"/{gw.empty}//", "bob")
    assert_refused(r, 400, "InvalidArgument")
    r = gw.raw("DELETE", f"/{gw.empty}//x", "bob")
    assert_refused(r, 400, "InvalidArgument")
    d.head_bucket(Bucket=gw.empty)
    assert gw.empty in [b["Name"] for b in d.list_buckets()["Buckets"]]


# --------------------------------------------------------------------------
# 3. upload ids in another case

def test_upload_id_case_and_initiator(gw):
    d = gw.direct()
    alice, bob = gw.alice(), gw.bob()
    key = new_key("mp", "upload")
    uid = alice.create_multipart_upload(Bucket=gw.bkt, Key=key)["UploadId"]
    try:
        other = swapped(uid)
        ops = {
            "ListParts": lambda u: bob.list_parts(Bucket=gw.bkt, Key=key, UploadId=u),
            "UploadPart": lambda u: bob.upload_part(Bucket=gw.bkt, Key=key, UploadId=u,
                                                    PartNumber=1, Body=b"bob" * 100),
            "AbortMultipartUpload": lambda u: bob.abort_multipart_upload(
                Bucket=gw.bkt, Key=key, UploadId=u),
        }
        for name, call in ops.items():
            with pytest.raises(ClientError) as ei:
                call(uid)
            assert (status_of(ei.value), code_of(ei.value)) == (403, "AccessDenied"), \
                (name, "exact id", ei.value.response)
            with pytest.raises(ClientError) as ei:
                call(other)
            got = (status_of(ei.value), code_of(ei.value))
            assert got in ((404, "NoSuchUpload"), (403, "AccessDenied")), \
                (name, "case-swapped id", ei.value.response)

        # Upstream: the upload is there, without any part.
        ups = d.list_multipart_uploads(Bucket=gw.bkt, Prefix=key).get("Uploads", [])
        assert [u["UploadId"] for u in ups] == [uid]
        assert d.list_parts(Bucket=gw.bkt, Key=key, UploadId=uid).get("Parts", []) == []

        # Alice, with the id as issued, adds a part and aborts.
        part = b"alice" * 200
        etag = alice.upload_part(Bucket=gw.bkt, Key=key, UploadId=uid, PartNumber=1,
                                 Body=part)["ETag"]
        parts = d.list_parts(Bucket=gw.bkt, Key=key, UploadId=uid).get("Parts", [])
        assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, len(part), etag)]
        resp = alice.abort_multipart_upload(Bucket=gw.bkt, Key=key, UploadId=uid)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
        ups = d.list_multipart_uploads(Bucket=gw.bkt, Prefix=key).get("Uploads", [])
        assert ups == []
    finally:
        try:
            d.abort_multipart_upload(Bucket=gw.bkt, Key=key, UploadId=uid)
        except ClientError:
            pass


# --------------------------------------------------------------------------
# 4. DeleteObjects decided key by key

def test_delete_objects_per_key(gw):
    d = gw.direct()
    alice = gw.alice()
    tmp, keep = new_key("tmp", "a"), new_key("keep", "b")
    for k in (tmp, keep):
        d.put_object(Bucket=gw.bkt, Key=k, Body=b"x")

    resp = alice.delete_objects(Bucket=gw.bkt, Delete={"Objects": [{"Key": tmp}, {"Key": keep}]})
    assert [o["Key"] for o in resp.get("Deleted", [])] == [tmp], resp
    assert [(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == [(keep, "AccessDenied")], resp
    assert not exists(d, gw.bkt, tmp)
    assert exists(d, gw.bkt, keep)

    # Quiet: only the error comes back (where the upstream honours Quiet:
    # moto 5 lists deleted keys anyway, and the gateway relays that).
    tmp2 = new_key("tmp", "q")
    d.put_object(Bucket=gw.bkt, Key=tmp2, Body=b"x")
    resp = alice.delete_objects(Bucket=gw.bkt, Delete={
        "Objects": [{"Key": tmp2}, {"Key": keep}], "Quiet": True})
    if _upstream_honours_quiet(d, gw.bkt):
        assert resp.get("Deleted", []) == [], resp
    else:
        assert [o["Key"] for o in resp.get("Deleted", [])] == [tmp2], resp
    assert [(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == [(keep, "AccessDenied")], resp
    assert not exists(d, gw.bkt, tmp2)
    assert exists(d, gw.bkt, keep)


def _upstream_honours_quiet(d, bucket: str) -> bool:
    scratch = new_key("tmp", "quiet-probe")
    d.put_object(Bucket=bucket, Key=scratch, Body=b"x")
    resp = d.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": scratch}], "Quiet": True})
    return not resp.get("Deleted")


def test_delete_objects_limits_and_versions(gw):
    d = gw.direct()
    alice, bob = gw.alice(), gw.bob()
    real = [new_key("tmp", f"many{i}") for i in range(3)]
    for k in real:
        d.put_object(Bucket=gw.bkt, Key=k, Body=b"x")

    # 1,001 keys: the whole request is refused, nothing is deleted.
    objects = [{"Key": k} for k in real] + [{"Key": f"tmp/none-{i}"} for i in range(998)]
    assert len(objects) == 1001
    with pytest.raises(ClientError) as ei:
        alice.delete_objects(Bucket=gw.bkt, Delete={"Objects": objects})
    assert (status_of(ei.value), code_of(ei.value)) == (400, "MalformedXML"), ei.value.response
    assert all(exists(d, gw.bkt, k) for k in real)

    # A VersionId needs s3:DeleteObjectVersion, which bob lacks (he has
    # s3:DeleteObject on tmp/*).
    version = d.head_object(Bucket=gw.bkt, Key=real[0]).get("VersionId") or "null"
    resp = bob.delete_objects(Bucket=gw.bkt, Delete={
        "Objects": [{"Key": real[0], "VersionId": version}]})
    assert resp.get("Deleted", []) == [], resp
    # The version is `null` (neither store keeps versions): decided as a
    # version delete, which bob may not do.
    assert [(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == \
        [(real[0], "AccessDenied")], resp
    assert exists(d, gw.bkt, real[0])
    # Without the VersionId, the same key may go.
    resp = bob.delete_objects(Bucket=gw.bkt, Delete={"Objects": [{"Key": real[0]}]})
    assert [o["Key"] for o in resp.get("Deleted", [])] == [real[0]], resp
    assert not exists(d, gw.bkt, real[0])


def test_version_ids_on_a_store_without_versions(gw):
    """Garage ignores `versionId` (moto too, on an unversioned bucket): a
    version delete would delete the live object, and Garage reads a
    versioned copy source as the key `k?versionId=…`."""
    d = gw.direct()
    key = new_key("keep", "live")
    d.put_object(Bucket=gw.bkt, Key=key, Body=b"live")
    hidden = key + "?versionId=abc"
    d.put_object(Bucket=gw.bkt, Key=hidden, Body=b"hidden")
    r = gw.raw("DELETE", f"/{gw.bkt}/{key}?versionId=bogus", "alice")
    assert_refused(r, 400, "InvalidArgument")
    assert exists(d, gw.bkt, key)

    dst = new_key("tmp", "copy")
    r = gw.raw("PUT", f"/{gw.bkt}/{dst}", "alice",
               headers={"x-amz-copy-source": f"/{gw.bkt}/{key}?versionId=abc"})
    assert_refused(r, 400, "InvalidArgument")
    assert not exists(d, gw.bkt, dst)


# --------------------------------------------------------------------------
# 5. the ownership state is out of reach

def test_ownership_state_is_unreachable(gw):
    d = gw.direct()
    alice = gw.alice()
    key = new_key("mp", "state")
    uid = alice.create_multipart_upload(Bucket=gw.bkt, Key=key)["UploadId"]
    try:
        records = all_keys(d, gw.state)
        assert records and all(k.startswith(STATE_PREFIX) for k in records), records
        record = records[0]
        record_body = d.get_object(Bucket=gw.state, Key=record)["Body"].read()
        planted = f"{STATE_PREFIX}anything-{uuid.uuid4().hex[:8]}"

        for k in (planted, record):
            for method, body in (("GET", b""), ("PUT", b'{"principal":"alice"}'),
                                 ("DELETE", b""), ("HEAD", b"")):
                r = gw.raw(method, f"/{gw.state}/{quote(k)}", "alice", body=body)
                assert r.status == 403, (method, k, str(r))
                if method != "HEAD":
                    assert r.code == "AccessDenied", (method, k, str(r))
                assert b"principal" not in r.body, (method, k, str(r))
        for q in ("", "?prefix=owners%2F", "?list-type=2", "?list-type=2&prefix=owners%2F",
                  "?uploads", "?versions"):
            r = gw.raw("GET", f"/{gw.state}{q}", "alice")
            assert_refused(r, 403, "AccessDenied")
            assert record.encode() not in r.body, (q, str(r))
        with pytest.raises(ClientError) as ei:
            alice.list_objects_v2(Bucket=gw.state, Prefix=STATE_PREFIX)
        assert code_of(ei.value) == "AccessDenied", ei.value.response
        resp = alice.delete_objects(Bucket=gw.state, Delete={"Objects": [{"Key": record}]})
        assert [(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == \
            [(record, "AccessDenied")], resp

        # Upstream: nothing planted, the record untouched.
        assert not exists(d, gw.state, planted)
        assert d.get_object(Bucket=gw.state, Key=record)["Body"].read() == record_body
        # The record still works: another principal is still "other".
        with pytest.raises(ClientError) as ei:
            gw.bob().list_parts(Bucket=gw.bkt, Key=key, UploadId=uid)
        assert code_of(ei.value) == "AccessDenied", ei.value.response
    finally:
        alice.abort_multipart_upload(Bucket=gw.bkt, Key=key, UploadId=uid)


# --------------------------------------------------------------------------
# 6. s3gate:ContentLength from verified facts

@pytest.mark.parametrize("payload", ["sha256", "UNSIGNED-PAYLOAD"])
def test_content_length_is_verified(gw, payload):
    d = gw.direct()
    big = os.urandom(5000)
    ph = None if payload == "sha256" else payload
    key = new_key("big", "obj")

    r = gw.raw("PUT", f"/{gw.bkt}/{key}", "alice", body=big, payload_hash=ph,
               headers={"x-amz-decoded-content-length": "10"})
    assert_refused(r, 400, "InvalidArgument")
    r = gw.raw("PUT", f"/{gw.bkt}/{key}", "alice", body=big, payload_hash=ph)
    assert_refused(r, 403, "AccessDenied")
    assert not exists(d, gw.bkt, key)

    small = os.urandom(500)
    r = gw.raw("PUT", f"/{gw.bkt}/{key}", "alice", body=small, payload_hash=ph)
    assert r.status == 200, str(r)
    assert d.get_object(Bucket=gw.bkt, Key=key)["Body"].read() == small


# --------------------------------------------------------------------------
# 7. parameters an operation does not define

def test_undefined_parameters_are_refused(gw):
    d = gw.direct()
    key = new_key("t7", "k")
    r = gw.raw("PUT", f"/{gw.bkt}/{key}?x-amz-acl=public-read", "bob", body=b"acl")
    assert_refused(r, 400, "InvalidArgument")
    assert not exists(d, gw.bkt, key)

    d.put_object(Bucket=gw.bkt, Key=key, Body=b"content-of-k")
    before = _object_acl(d, gw.bkt, key)
    r = gw.raw("PUT", f"/{gw.bkt}/{key}?x-amz-acl=public-read", "bob", body=b"acl")
    assert_refused(r, 400, "InvalidArgument")
    r = gw.raw("GET", f"/{gw.bkt}/{key}?prefix=a", "alice")
    assert_refused(r, 400, "InvalidArgument")
    assert b"content-of-k" not in r.body
    assert d.get_object(Bucket=gw.bkt, Key=key)["Body"].read() == b"content-of-k"
    assert _object_acl(d, gw.bkt, key) == before


def _object_acl(d, bucket: str, key: str):
    """The object's grants, or None where the upstream has no ACLs."""
    try:
        return d.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    except ClientError as e:
        if code_of(e) == "NotImplemented":
            return None
        raise


# --------------------------------------------------------------------------
# 8. anonymous response overrides

def test_anonymous_response_overrides(gw):
    d = gw.direct()
    key = new_key("public", "p")
    d.put_object(Bucket=gw.bkt, Key=key, Body=b"<b>public</b>", ContentType="text/plain")

    r = gw.raw("GET", f"/{gw.bkt}/{key}?response-content-type=text%2Fhtml")
    assert_refused(r, 400, "InvalidRequest")
    assert b"<b>public</b>" not in r.body
    r = gw.raw("GET", f"/{gw.bkt}/{key}")
    assert r.status == 200, str(r)
    assert r.body == b"<b>public</b>"
    assert r.headers.get("content-type") == "text/plain"
    # Outside public/: anonymous is refused.
    r = gw.raw("GET", f"/{gw.bkt}/t8/none")
    assert_refused(r, 403, "AccessDenied")
