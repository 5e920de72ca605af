"""More real S3 clients through s3gate, in front of Garage and moto, over HTTP
and HTTPS: the MinIO Python SDK and rclone, with what the client matrix
(test_client_matrix.py, Garage only) does not cover. As in test_clients.py, a
direct look at the upstream checks what each write through the gateway left
there."""
from __future__ import annotations

import io
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import ALICE_KEY, ALICE_SECRET, REGION, write_random_file
from test_clients import assert_upstream_has, direct_head, sha256

MiB = 1024 * 1024
# Characters that clients and gateway must agree on when they sign and route.
ODD_NAME = "with space+plus/ünïcødé ☃ & ~ =.bin"


def assert_upstream_lacks(target, key):
    assert direct_head(target, key) is None, f"{key} unexpectedly exists upstream"


def ssl_context(target):
    return ssl.create_default_context(cafile=target.ca_bundle) if target.https else None


def run(cmd, env, timeout=120, text=True):
    r = subprocess.run(cmd, env=env, capture_output=True, text=text, timeout=timeout)
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


# --------------------------------------------------------------------------
# 1. MinIO Python SDK

def minio_client(target):
    """A Minio client through the gateway, WITHOUT a region: it asks
    GetBucketLocation and signs for the region it is told. No retries, so a
    gateway error shows."""
    import urllib3
    from minio import Minio

    kwargs = dict(timeout=urllib3.Timeout(connect=15, read=60), retries=False)
    if target.https:
        kwargs.update(cert_reqs="CERT_REQUIRED", ca_certs=target.ca_bundle)
    return Minio(target.endpoint.split("://", 1)[1], access_key=ALICE_KEY, secret_key=ALICE_SECRET,
                 secure=target.https, http_client=urllib3.PoolManager(**kwargs))


def minio_read(mc, bucket, key, **kw) -> bytes:
    r = mc.get_object(bucket, key, **kw)
    try:
        return r.read()
    finally:
        r.close()
        r.release_conn()


def test_minio_put_get_list_copy_remove(target, cleanup):
    from minio.commonconfig import CopySource

    mc = minio_client(target)
    base = target.new_key("minio")
    plain, odd, copy = f"{base}/plain.bin", f"{base}/{ODD_NAME}", f"{base}/sub/copy of ü+.bin"
    cleanup.extend([plain, odd, copy])
    body = os.urandom(300 * 1024 + 7)
    odd_body = os.urandom(70 * 1024 + 1)

    # The first call asks the bucket's region (GetBucketLocation, signed for
    # us-east-1), then signs the PUT for the region it was told.
    trace = io.StringIO()
    mc.trace_on(trace)
    put = mc.put_object(target.bucket, plain, io.BytesIO(body), len(body),
                        content_type="application/x-test", metadata={"e2e": "yes"})
    mc.trace_off()
    assert f"GET /{target.bucket}?location= HTTP/1.1" in trace.getvalue(), trace.getvalue()
    assert mc._region_map.get(target.bucket) == REGION, trace.getvalue()
    assert put.etag
    assert_upstream_has(target, plain, len(body), body)

    mc.put_object(target.bucket, odd, io.BytesIO(odd_body), len(odd_body))
    assert_upstream_has(target, odd, len(odd_body), odd_body)

    assert minio_read(mc, target.bucket, plain) == body
    assert minio_read(mc, target.bucket, plain, offset=100, length=1024) == body[100:1124]
    assert minio_read(mc, target.bucket, odd, offset=len(odd_body) - 10) == odd_body[-10:]
    st = mc.stat_object(target.bucket, plain)
    assert st.size == len(body)
    assert st.content_type == "application/x-test"
    assert st.metadata.get("x-amz-meta-e2e") == "yes"
    assert st.etag == put.etag
    assert mc.stat_object(target.bucket, odd).size == len(odd_body)

    # Server-side copy from the odd key (its name URL-encoded in
    # x-amz-copy-source) to another odd key.
    mc.copy_object(target.bucket, copy, CopySource(target.bucket, odd))
    assert_upstream_has(target, copy, len(odd_body), odd_body)
    assert sha256(minio_read(mc, target.bucket, copy)) == sha256(odd_body)

    # Listing (ListObjectsV2, encoding-type=url): with a delimiter, then
    # recursively.
    top = {(o.object_name, o.is_dir, o.size)
           for o in mc.list_objects(target.bucket, prefix=f"{base}/", recursive=False)}
    assert top == {(plain, False, len(body)), (f"{base}/with space+plus/", True, None),
                   (f"{base}/sub/", True, None)}, top
    everything = {(o.object_name, o.size)
                  for o in mc.list_objects(target.bucket, prefix=f"{base}/", recursive=True)}
    assert everything == {(plain, len(body)), (odd, len(odd_body)), (copy, len(odd_body))}
    under = [o.object_name for o in mc.list_objects(target.bucket, prefix=f"{base}/with space+plus/")]
    assert under == [odd]

    for key in (plain, odd, copy):
        mc.remove_object(target.bucket, key)
        assert_upstream_lacks(target, key)
    assert list(mc.list_objects(target.bucket, prefix=f"{base}/", recursive=True)) == []


def test_minio_put_unknown_size_multipart(target, cleanup):
    """length=-1: the SDK reads 5 MiB parts from the stream and uploads them
    as a multipart upload (5 MiB + 321 bytes); a ranged read across the
    parts' boundary."""
    mc = minio_client(target)
    key = target.new_key("minio-stream") + "/stream ü+.bin"
    cleanup.append(key)
    size = 5 * MiB + 321
    data = os.urandom(size)

    class Stream(io.RawIOBase):
        """A readable stream that does not tell its size."""
        def __init__(self, b):
            self._b = io.BytesIO(b)

        def readable(self):
            return True

        def read(self, n=-1):
            return self._b.read(n)

    res = mc.put_object(target.bucket, key, Stream(data), length=-1, part_size=5 * MiB)
    assert res.etag.strip('"').endswith("-2"), res.etag
    assert_upstream_has(target, key, size, parts=2)
    got = minio_read(mc, target.bucket, key)
    assert len(got) == size
    assert sha256(got) == sha256(data)
    across = minio_read(mc, target.bucket, key, offset=5 * MiB - 5, length=10)
    assert across == data[5 * MiB - 5:5 * MiB + 5]

    mc.remove_object(target.bucket, key)
    assert_upstream_lacks(target, key)


def test_minio_presigned_get_tampered_is_refused(target, cleanup):
    """A presigned GET works; with its signature changed it is refused. (The
    client matrix covers MinIO Python's presigned GET and PUT against
    Garage.)"""
    mc = minio_client(target)
    key = f"{target.new_key('minio-presigned')}/get {ODD_NAME}"
    cleanup.append(key)
    body = os.urandom(90 * 1024 + 3)
    ctx = ssl_context(target)

    target.direct().put_object(Bucket=target.bucket, Key=key, Body=body)
    url = mc.presigned_get_object(target.bucket, key, expires=timedelta(minutes=10))
    assert "X-Amz-Signature=" in url and url.startswith(target.endpoint + "/"), url
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=60) as r:
            assert r.status == 200
            got = r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"GET {url} -> {e.code}: {e.read()[:2000]!r}") from None
    assert sha256(got) == sha256(body)

    sig = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url).group(1)
    bad = url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, context=ctx, timeout=60)
    assert e.value.code == 403
    assert b"SignatureDoesNotMatch" in e.value.read()


# --------------------------------------------------------------------------
# 2. rclone

def rclone_cmd(target, workdir: Path, path_style: bool = True):
    """rclone with a config file holding one S3 remote, `gw`, for alice. No
    retries, so a gateway error shows. (Also used by the client matrix,
    which passes a test_client_matrix.Mode as `target`.)"""
    exe = shutil.which("rclone")
    if exe is None:
        # .ci/setup installs it: missing in CI is a failure.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "rclone is not installed (apt-get install rclone; .ci/setup does)")
    cfg = workdir / "rclone.conf"
    cfg.write_text("\n".join([
        "[gw]",
        "type = s3",
        "provider = Other",
        "env_auth = false",
        f"access_key_id = {ALICE_KEY}",
        f"secret_access_key = {ALICE_SECRET}",
        f"endpoint = {target.endpoint}",
        f"region = {REGION}",
        f"force_path_style = {'true' if path_style else 'false'}",
        # rclone's default cutoff is 200 MiB: 5 MiB makes a file above it
        # go multipart in the default (and smallest) 5 MiB chunks.
        "upload_cutoff = 5Mi",
        "chunk_size = 5Mi",
    ]) + "\n")
    cmd = [exe, "--config", str(cfg), "--retries", "1", "--low-level-retries", "1",
           "--contimeout", "15s", "--timeout", "60s"]
    if target.https:
        cmd += ["--ca-cert", target.ca_bundle]
    return cmd


def test_rclone_copy_check(target, cleanup, workdir):
    """rclone copy of a tree with a multipart file (5 MiB chunks, 2 parts) and
    an odd name, then `rclone check`: sizes and hashes (MD5 from the ETag, or
    for multipart objects from rclone's own metadata) agree with the local
    tree. (The client matrix covers rclone's other operations against
    Garage.)"""
    rclone = rclone_cmd(target, workdir)
    env = target.env()
    base = target.new_key("rclone")
    remote = f"gw:{target.bucket}/{base}"

    src = workdir / "src"
    (src / "sub dir").mkdir(parents=True)
    big_size = 5 * MiB + 4321                         # 2 parts of 5 MiB
    write_random_file(src / "big.bin", big_size)
    odd_data = os.urandom(33 * 1024)
    (src / "sub dir" / "ünï + cødé.bin").write_bytes(odd_data)
    files = {"big.bin": big_size, "sub dir/ünï + cødé.bin": len(odd_data)}
    cleanup.extend(f"{base}/{name}" for name in files)

    run(rclone + ["copy", str(src), remote], env)
    assert_upstream_has(target, f"{base}/big.bin", big_size, parts=2)
    assert_upstream_has(target, f"{base}/sub dir/ünï + cødé.bin", len(odd_data), odd_data)
    run(rclone + ["check", str(src), remote], env)

    run(rclone + ["purge", remote], env)
    for name in files:
        assert_upstream_lacks(target, f"{base}/{name}")
