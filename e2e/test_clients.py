"""Real S3 clients through s3gate, in front of Garage and moto, over HTTP and
HTTPS. After each write through the gateway a direct look at the upstream
checks what really landed there."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3.s3.transfer
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from conftest import ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET, REGION, write_random_file

MiB = 1024 * 1024


# --------------------------------------------------------------------------
# helpers

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def direct_head(target, key):
    """HEAD straight at the upstream; None when the object is not there."""
    try:
        return target.direct().head_object(Bucket=target.bucket, Key=key)
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return None
        raise


def assert_upstream_has(target, key, size, content: bytes | None = None, parts: int | None = None):
    head = direct_head(target, key)
    assert head is not None, f"{key} is not in upstream bucket {target.bucket}"
    assert head["ContentLength"] == size
    if parts is not None:
        assert head["ETag"].strip('"').endswith(f"-{parts}"), head["ETag"]
    if content is not None:
        got = target.direct().get_object(Bucket=target.bucket, Key=key)["Body"].read()
        assert got == content


def assert_upstream_lacks(target, key):
    assert direct_head(target, key) is None, f"{key} unexpectedly exists upstream"


def direct_upload_ids(target, key):
    r = target.direct().list_multipart_uploads(Bucket=target.bucket, Prefix=key)
    return {u["UploadId"] for u in r.get("Uploads", []) if u["Key"] == key}


def fetch_url(target, url: str) -> bytes:
    ctx = ssl.create_default_context(cafile=target.ca_bundle) if target.https else None
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=60) as r:
            assert r.status == 200
            return r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"GET {url} -> {e.code}: {e.read()[:2000]!r}") from None


def run(cmd, env, timeout=600):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
                               f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r.stdout


@pytest.fixture
def workdir(target):
    """A scratch directory inside the session dir, removed after the test."""
    d = target.session_dir / "work" / os.urandom(6).hex()
    d.mkdir(parents=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def big_file(session_dir):
    """24 MiB + 1 of random bytes for the AWS CLI (4 parts of its default
    8 MiB), written once per session."""
    path = session_dir / "big-24MiB.bin"
    digest = write_random_file(path, 24 * MiB + 1)
    yield path, digest
    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# 1. boto3

def test_boto3_put_get_head_list_delete(target, cleanup):
    s3 = target.client()
    key = target.new_key("basic")
    cleanup.append(key)
    body = os.urandom(300 * 1024 + 7)

    put = s3.put_object(Bucket=target.bucket, Key=key, Body=body, ContentType="application/x-test",
                        Metadata={"e2e": "yes"})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_upstream_has(target, key, len(body), body)

    got = s3.get_object(Bucket=target.bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"].get("e2e") == "yes"

    ranged = s3.get_object(Bucket=target.bucket, Key=key, Range="bytes=100-1123")
    assert ranged["Body"].read() == body[100:1124]

    head = s3.head_object(Bucket=target.bucket, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]

    prefix = key.rsplit("/", 1)[0] + "/"
    listed = s3.list_objects_v2(Bucket=target.bucket, Prefix=prefix)
    sizes = {o["Key"]: o["Size"] for o in listed.get("Contents", [])}
    assert sizes.get(key) == len(body)
    listed_v1 = s3.list_objects(Bucket=target.bucket, Prefix=key)
    assert [o["Key"] for o in listed_v1.get("Contents", [])] == [key]

    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=target.bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_boto3_put_empty_object(target, cleanup):
    """A zero-byte PutObject. Over HTTPS boto3 sends it as an aws-chunked
    body (STREAMING-UNSIGNED-PAYLOAD-TRAILER, X-Amz-Decoded-Content-Length: 0,
    a CRC32 trailer) with `Expect: 100-continue`."""
    key = target.new_key("empty")
    cleanup.append(key)
    # Short timeouts: a hang shows up as a failure within seconds instead of
    # after the gateway's 60 s body timeout. (While botocore waits for
    # `100 Continue` its socket runs on the connect timeout.)
    s3 = target.client(connect_timeout=15, read_timeout=15)
    try:
        put = s3.put_object(Bucket=target.bucket, Key=key, Body=b"")
    except (HTTPClientError, BotoConnectionError) as e:
        raise AssertionError(f"PutObject of an empty body: no answer within 15 s ({e!r})") from None
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_upstream_has(target, key, 0, b"")
    got = s3.get_object(Bucket=target.bucket, Key=key)
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""
    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)


def test_boto3_upload_fileobj_multipart(target, cleanup):
    s3 = target.client()
    key = target.new_key("mpu-10MiB")
    cleanup.append(key)
    size = 10 * MiB + 12345          # 3 parts: 2 full ones and a short last one
    data = os.urandom(size)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                                           max_concurrency=2)

    s3.upload_fileobj(io.BytesIO(data), target.bucket, key, Config=cfg)
    assert_upstream_has(target, key, size, parts=3)

    out = io.BytesIO()
    s3.download_fileobj(target.bucket, key, out, Config=cfg)
    assert len(out.getvalue()) == size
    assert sha256(out.getvalue()) == sha256(data)

    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)


def test_boto3_explicit_multipart_complete(target, cleanup):
    s3 = target.client()
    key = target.new_key("mpu-explicit")
    cleanup.append(key)
    part1, part2 = os.urandom(5 * MiB), os.urandom(1000)

    up = s3.create_multipart_upload(Bucket=target.bucket, Key=key, ContentType="application/x-parts")
    uid = up["UploadId"]
    assert uid in direct_upload_ids(target, key)
    e1 = s3.upload_part(Bucket=target.bucket, Key=key, UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=target.bucket, Key=key, UploadId=uid, PartNumber=2, Body=part2)["ETag"]

    parts = s3.list_parts(Bucket=target.bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == \
        [(1, len(part1), e1), (2, len(part2), e2)]
    uploads = s3.list_multipart_uploads(Bucket=target.bucket, Prefix=key).get("Uploads", [])
    assert uid in {u["UploadId"] for u in uploads if u["Key"] == key}

    done = s3.complete_multipart_upload(
        Bucket=target.bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert done["Key"] == key
    assert_upstream_has(target, key, len(part1) + len(part2), parts=2)
    assert uid not in direct_upload_ids(target, key)

    got = s3.get_object(Bucket=target.bucket, Key=key)
    assert got["ContentType"] == "application/x-parts"
    assert sha256(got["Body"].read()) == sha256(part1 + part2)


def test_boto3_multipart_abort(target, cleanup):
    s3 = target.client()
    key = target.new_key("mpu-abort")
    cleanup.append(key)

    uid = s3.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=target.bucket, Key=key, UploadId=uid, PartNumber=1, Body=os.urandom(64 * 1024))
    uploads = s3.list_multipart_uploads(Bucket=target.bucket, Prefix=key).get("Uploads", [])
    assert uid in {u["UploadId"] for u in uploads if u["Key"] == key}
    assert uid in direct_upload_ids(target, key)

    s3.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=uid)
    uploads = s3.list_multipart_uploads(Bucket=target.bucket, Prefix=key).get("Uploads", [])
    assert uid not in {u["UploadId"] for u in uploads}
    assert uid not in direct_upload_ids(target, key)
    assert_upstream_lacks(target, key)


@pytest.mark.parametrize("signing", ["default", "s3v4"])
def test_boto3_presigned_get(target, cleanup, signing):
    key = target.new_key(f"presigned-{signing}") + "/with space+plus"
    cleanup.append(key)
    body = os.urandom(70 * 1024)
    target.client().put_object(Bucket=target.bucket, Key=key, Body=body)
    assert_upstream_has(target, key, len(body), body)

    s3 = target.client() if signing == "default" else target.client(signature_version="s3v4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": target.bucket, "Key": key},
                                    ExpiresIn=600)
    if signing == "s3v4":
        assert "X-Amz-Signature=" in url, url
    else:
        # botocore presigns SigV2 query auth for a custom endpoint, unless told
        # otherwise; accept V4 should a future botocore change its default.
        assert "Signature=" in url, url
    assert fetch_url(target, url) == body


# --------------------------------------------------------------------------
# 2. ibm_boto3 (IBM COS SDK)

def ibm_client(target):
    import ibm_boto3
    import ibm_botocore.client

    return ibm_boto3.client(
        "s3", endpoint_url=target.endpoint, aws_access_key_id=ALICE_KEY,
        aws_secret_access_key=ALICE_SECRET, region_name=REGION, verify=target.verify,
        config=ibm_botocore.client.Config(signature_version="s3v4",
                                          retries={"total_max_attempts": 1}),
    )


def test_ibm_put_get_list(target, cleanup):
    s3 = ibm_client(target)
    key = target.new_key("ibm-basic")
    cleanup.append(key)
    body = os.urandom(200 * 1024 + 3)

    s3.put_object(Bucket=target.bucket, Key=key, Body=body)
    assert_upstream_has(target, key, len(body), body)
    assert s3.get_object(Bucket=target.bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=target.bucket, Key=key)["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=target.bucket, Prefix=key).get("Contents", [])
    assert [(o["Key"], o["Size"]) for o in listed] == [(key, len(body))]
    listed_v1 = s3.list_objects(Bucket=target.bucket, Prefix=key).get("Contents", [])
    assert [o["Key"] for o in listed_v1] == [key]

    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)


def test_ibm_upload_fileobj_multipart(target, cleanup):
    import ibm_boto3.s3.transfer

    s3 = ibm_client(target)
    key = target.new_key("ibm-mpu-12MiB")
    cleanup.append(key)
    size = 12 * MiB + 99
    data = os.urandom(size)
    cfg = ibm_boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB,
                                               multipart_chunksize=5 * MiB, max_concurrency=2)

    s3.upload_fileobj(io.BytesIO(data), target.bucket, key, Config=cfg)
    assert_upstream_has(target, key, size, parts=3)

    out = io.BytesIO()
    s3.download_fileobj(target.bucket, key, out, Config=cfg)
    assert sha256(out.getvalue()) == sha256(data)
    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)


def test_ibm_multipart_abort(target, cleanup):
    s3 = ibm_client(target)
    key = target.new_key("ibm-abort")
    cleanup.append(key)

    uid = s3.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=target.bucket, Key=key, UploadId=uid, PartNumber=1, Body=os.urandom(10_000))
    parts = s3.list_parts(Bucket=target.bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 10_000)]
    assert uid in direct_upload_ids(target, key)

    s3.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=uid)
    uploads = s3.list_multipart_uploads(Bucket=target.bucket, Prefix=key).get("Uploads", [])
    assert uid not in {u["UploadId"] for u in uploads}
    assert uid not in direct_upload_ids(target, key)
    assert_upstream_lacks(target, key)


# --------------------------------------------------------------------------
# 3. AWS CLI

def aws_cmd(target, *args):
    cmd = ["aws", "--endpoint-url", target.endpoint, "--region", REGION, *args]
    if target.https:
        cmd += ["--ca-bundle", target.ca_bundle]
    return cmd


def test_awscli_default_multipart_and_uploads_list(target, cleanup, workdir, big_file):
    """The AWS CLI with its default transfer settings: a file above the 8 MiB
    threshold goes up in 8 MiB parts sent concurrently and comes down in
    concurrent ranged GETs; an upload in progress shows in
    list-multipart-uploads. Each command is an `aws` process, as people run
    it. (The client matrix covers the AWS CLI's other operations, against
    Garage.)"""
    src, digest = big_file
    env = target.env()
    key = target.new_key("awscli-24MiB")
    cleanup.append(key)
    url = f"s3://{target.bucket}/{key}"

    run(aws_cmd(target, "s3", "cp", "--only-show-errors", str(src), url), env)
    assert_upstream_has(target, key, src.stat().st_size, parts=4)   # 8 MiB default chunks

    dst = workdir / "down.bin"
    run(aws_cmd(target, "s3", "cp", "--only-show-errors", url, str(dst)), env)
    assert dst.stat().st_size == src.stat().st_size
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == digest

    # An upload in progress (started with boto3), seen through the gateway
    # by list-multipart-uploads.
    mkey = target.new_key("awscli-mpu")
    cleanup.append(mkey)
    uid = target.client().create_multipart_upload(Bucket=target.bucket, Key=mkey)["UploadId"]
    listed = run(aws_cmd(target, "s3api", "list-multipart-uploads", "--bucket", target.bucket,
                         "--prefix", mkey, "--output", "json"), env)
    uploads = json.loads(listed).get("Uploads", []) if listed.strip() else []
    assert uid in {u["UploadId"] for u in uploads}, listed
    target.client().abort_multipart_upload(Bucket=target.bucket, Key=mkey, UploadId=uid)


# --------------------------------------------------------------------------
# 4. s3cmd

def s3cmd_config(target, path: Path) -> Path:
    hostport = target.endpoint.split("://", 1)[1]
    lines = [
        "[default]",
        f"access_key = {ALICE_KEY}",
        f"secret_key = {ALICE_SECRET}",
        f"host_base = {hostport}",
        f"host_bucket = {hostport}",
        f"use_https = {'True' if target.https else 'False'}",
        "signature_v2 = False",
        f"bucket_location = {REGION}",
        "check_ssl_certificate = True",
        "check_ssl_hostname = True",
        f"ca_certs_file = {target.ca_bundle or ''}",
        "guess_mime_type = False",
        "progress_meter = False",
        "proxy_host = ",
        "proxy_port = 0",
        "max_retries = 0",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_s3cmd_with_bucket_location(target, cleanup, workdir):
    """s3cmd configured as most people have it, with `bucket_location`: a
    multipart put (`--multipart-chunk-size-mb=5`, 2 parts), get, del. (The
    client matrix covers s3cmd's other operations, without
    `bucket_location`, against Garage.)"""
    env = target.env()
    cfg = s3cmd_config(target, workdir / "s3cmd.cfg")
    s3cmd = ["s3cmd", "-c", str(cfg)]

    big = workdir / "big.bin"
    size = 5 * MiB + 5
    digest = write_random_file(big, size)
    key = target.new_key("s3cmd-mpu")
    cleanup.append(key)
    url = f"s3://{target.bucket}/{key}"

    run(s3cmd + ["put", "--multipart-chunk-size-mb=5", str(big), url], env)
    assert_upstream_has(target, key, size, parts=2)

    got = workdir / "big.down"
    run(s3cmd + ["get", url, str(got)], env)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == digest

    run(s3cmd + ["del", url], env)
    assert_upstream_lacks(target, key)


# --------------------------------------------------------------------------
# 5. refusals

def error_of(excinfo):
    r = excinfo.value.response
    return r["Error"].get("Code"), r["ResponseMetadata"]["HTTPStatusCode"]


def test_wrong_secret_is_refused(target, cleanup):
    key = target.new_key("wrong-secret")
    cleanup.append(key)
    s3 = target.client(secret="not-" + ALICE_SECRET)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=target.bucket, Key=key, Body=b"must not land")
    assert error_of(e) == ("SignatureDoesNotMatch", 403)
    assert_upstream_lacks(target, key)

    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=target.bucket)
    assert error_of(e) == ("SignatureDoesNotMatch", 403)


def test_unknown_access_key_is_refused(target, cleanup):
    key = target.new_key("unknown-key")
    cleanup.append(key)
    s3 = target.client(key="AKIANOBODY0000000000", secret=ALICE_SECRET)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=target.bucket, Key=key, Body=b"must not land")
    assert error_of(e) == ("InvalidAccessKeyId", 403)
    assert_upstream_lacks(target, key)

    # The upstream's own key is not a gateway principal either.
    up = target.upstream
    s3 = target.client(key=up.access_key_id, secret=up.secret_access_key)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=target.bucket, Key=key, Body=b"must not land")
    assert error_of(e) == ("InvalidAccessKeyId", 403)
    assert_upstream_lacks(target, key)


def test_principal_with_secret_from_file(target, cleanup):
    """bob's secret comes from `{ file: ... }` in the gateway config."""
    key = target.new_key("bob")
    cleanup.append(key)
    s3 = target.client(key=BOB_KEY, secret=BOB_SECRET)
    s3.put_object(Bucket=target.bucket, Key=key, Body=b"bob was here")
    assert_upstream_has(target, key, 12, b"bob was here")
    s3.delete_object(Bucket=target.bucket, Key=key)
    assert_upstream_lacks(target, key)
