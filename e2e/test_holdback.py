"""A body that fails verification never becomes an object or a part upstream.

The gateway streams a request body upstream while it verifies it, but holds
back the last piece until the payload hash, every chunk signature, the
trailer signature and the checksum have verified (src/auth/payload.rs).
Garage verifies bodies itself, so tests against it would pass even if the
gateway forwarded everything; moto verifies nothing (it ignores
x-amz-content-sha256, chunk signatures and checksums) and stores whatever
complete body it receives. So every case here goes through the session's
moto gateway (plain HTTP) and then looks straight at moto, with moto's own
credentials: no object (for UploadPart: no part) may exist under the key.
Each case also sends the same request shape with a correct body, which
must store exactly the (decoded) bytes, so no case can pass vacuously.

Requests are built by hand: the head is signed with botocore's
S3SigV4Auth (with the x-amz-content-sha256 value given, which botocore
signs as is), aws-chunked chunk and trailer signatures are computed here
(AWS "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks" and the trailer variant), and everything is
written to a raw socket, so a body can be tampered with or cut short.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import os
import re
import socket
import time
import uuid
import zlib
from typing import Optional

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ALICE_KEY, ALICE_SECRET, REGION

KIB = 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

SIGNED_CHUNKS = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_CHUNKS_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

# How long a key must stay absent on moto after the gateway refused its
# body. The gateway has answered by then (or, for a cut-off body, learns of
# the close asynchronously), so this only guards against an upstream
# request still finishing; it is a poll, not a synchronisation sleep.
ABSENT_FOR = 1.0
ABSENT_FOR_TRUNCATED = 2.5
POLL = 0.1


# --------------------------------------------------------------------------
# signing

class _Signer(S3SigV4Auth):
    """S3 SigV4 with a chosen x-amz-content-sha256, signed as given."""

    def __init__(self, payload_hash: str):
        super().__init__(Credentials(ALICE_KEY, ALICE_SECRET), "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(date: str) -> bytes:
    k = _hmac(("AWS4" + ALICE_SECRET).encode(), date)
    for part in (REGION, "s3", "aws4_request"):
        k = _hmac(k, part)
    return k


@dataclasses.dataclass
class Signed:
    """A signed request head and what chunk signatures chain from."""
    headers: dict
    amz_date: str
    scope: str
    key: bytes
    seed: str


def sign_head(port: int, method: str, target: str, headers: dict, payload_hash: str) -> Signed:
    hdrs = {"Host": f"127.0.0.1:{port}", **headers}
    req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{target}", headers=hdrs)
    _Signer(payload_hash).add_auth(req)
    out = dict(req.headers.items())
    assert out["X-Amz-Content-SHA256"] == payload_hash
    amz_date = out["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    auth = out["Authorization"]
    assert f"Credential={ALICE_KEY}/{scope}," in auth, auth
    assert "x-amz-content-sha256" in re.search(r"SignedHeaders=([^,]*)", auth).group(1)
    seed = re.search(r"Signature=([0-9a-f]{64})", auth).group(1)
    return Signed(out, amz_date, scope, signing_key(amz_date[:8]), seed)


def chunk_signature(s: Signed, prev: str, data: bytes) -> str:
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, prev, EMPTY_SHA256,
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()


def trailer_signature(s: Signed, prev: str, trailers: list[tuple[str, str]]) -> str:
    canonical = "".join(f"{n}:{v}\n" for n, v in sorted(trailers))
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", s.amz_date, s.scope, prev,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def flip(b: bytes, i: int) -> bytes:
    """`b` with the byte at index `i` changed."""
    out = bytearray(b)
    out[i] ^= 0x01
    return bytes(out)


def flip_hex(sig: str) -> str:
    """A signature with its last hex digit changed (still well-formed)."""
    return sig[:-1] + ("0" if sig[-1] != "0" else "1")


# --------------------------------------------------------------------------
# aws-chunked framing

def split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for n in sizes:
        out.append(data[at:at + n])
        at += n
    assert at == len(data)
    return out


def frame(chunks: list[bytes], signed: Optional[Signed] = None, *,
          trailer: Optional[tuple[str, str]] = None,
          tamper_data_of: Optional[int] = None,
          tamper_final_sig: bool = False,
          tamper_trailer_sig: bool = False) -> bytes:
    """aws-chunked framing of `chunks` (plus the final 0-length chunk),
    signed when `signed` is given, with `trailer` (name, value) after the
    final chunk. Tampering: change one byte of data chunk `tamper_data_of`
    after signing it; change the final chunk's or the trailer's signature."""
    out = bytearray()
    prev = signed.seed if signed else None
    for i, data in enumerate(chunks + [b""]):
        ext = ""
        if signed is not None:
            sig = chunk_signature(signed, prev, data)
            prev = sig
            if tamper_final_sig and not data:
                sig = flip_hex(sig)
            ext = f";chunk-signature={sig}"
        if tamper_data_of is not None and i == tamper_data_of:
            data = flip(data, len(data) // 2)
        out += f"{len(data):x}{ext}\r\n".encode()
        if data:
            out += data + b"\r\n"
    if trailer is not None:
        name, value = trailer
        out += f"{name}:{value}\r\n".encode()
        if signed is not None:
            sig = trailer_signature(signed, prev, [trailer])
            if tamper_trailer_sig:
                sig = flip_hex(sig)
            out += f"x-amz-trailer-signature:{sig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


# --------------------------------------------------------------------------
# raw HTTP

@dataclasses.dataclass
class Resp:
    status: int
    body: bytes

    @property
    def code(self) -> str:
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else ""

    def __str__(self) -> str:
        return f"{self.status} {self.body[:600]!r}"


def send(port: int, method: str, target: str, headers: dict, body: bytes, *,
         cut_after: Optional[int] = None) -> Optional[Resp]:
    """Write the request to a fresh connection. With `cut_after`, send only
    that many bytes of the body and close the socket without reading;
    otherwise read the whole response."""
    head = f"{method} {target} HTTP/1.1\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    head += "Connection: close\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(head.encode())
        if cut_after is not None:
            sock.sendall(body[:cut_after])
            return None
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer before reading everything
        r = http.client.HTTPResponse(sock)
        r.begin()
        return Resp(r.status, r.read())
    finally:
        sock.close()


# --------------------------------------------------------------------------
# fixtures and checks on moto

@pytest.fixture
def gw(moto_gateway, request):
    request.node._gateway_log = (moto_gateway.log_path, moto_gateway.log_path.stat().st_size)
    return moto_gateway


@pytest.fixture
def direct(moto):
    return moto.client()


@pytest.fixture
def moto_log(session_dir, moto):
    return session_dir / "moto.log"


@pytest.fixture
def keys(moto, direct):
    """Keys to delete from moto when the test ends."""
    ks: list[str] = []
    yield ks
    for k in ks:
        try:
            direct.delete_object(Bucket=moto.bucket, Key=k)
        except ClientError:
            pass


def new_key(keys: list, label: str) -> str:
    k = f"holdback/{label}-{uuid.uuid4().hex[:10]}"
    keys.append(k)
    return k


def target_of(bucket: str, key: str) -> str:
    return f"/{bucket}/{key}"


def head_status(direct, bucket: str, key: str) -> int:
    try:
        direct.head_object(Bucket=bucket, Key=key)
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def assert_never_stored(direct, bucket: str, key: str, seconds: float = ABSENT_FOR) -> None:
    """Poll moto for `seconds`: the key must never appear."""
    deadline = time.monotonic() + seconds
    while True:
        status = head_status(direct, bucket, key)
        if status != 404:
            extra = ""
            if status == 200:
                got = direct.get_object(Bucket=bucket, Key=key)["Body"].read()
                extra = f" ({len(got)} bytes stored)"
            pytest.fail(f"{key} exists on moto (HEAD {status}){extra}: a body that failed "
                        f"verification reached the upstream complete")
        if time.monotonic() >= deadline:
            return
        time.sleep(POLL)  # poll interval


def moto_put_statuses(moto_log, bucket: str, key: str) -> list[int]:
    """Statuses moto's access log shows for PUTs of `key` (with any query)."""
    text = moto_log.read_text(errors="replace") if moto_log.exists() else ""
    pat = re.compile(rf'"PUT /{re.escape(bucket)}/{re.escape(key)}(?:\?[^ "]*)? HTTP/1\.[01]" (\d{{3}})')
    return [int(m.group(1)) for m in pat.finditer(text)]


def assert_upstream_saw_it(moto_log, bucket: str, key: str, seconds: float = 3.0) -> None:
    """The refused request did go upstream (the gateway streams bodies), and
    moto refused the body it never got complete: the hold-back, not the
    absence of an upstream request, is what kept it from being stored."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = moto_put_statuses(moto_log, bucket, key)
        if statuses:
            assert all(st >= 400 for st in statuses), f"moto answered {statuses} for {key}"
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"moto's log shows no PUT of {key}: the gateway never sent the "
                        f"request upstream, so this case proved nothing about the hold-back")
        time.sleep(POLL)  # poll interval


def assert_stored(direct, bucket: str, key: str, data: bytes) -> None:
    got = direct.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(got) == len(data), f"moto stored {len(got)} bytes, expected {len(data)}"
    assert got == data, "moto stored other bytes than the decoded data"


def assert_no_parts(direct, bucket: str, key: str, upload_id: str,
                    seconds: float = ABSENT_FOR) -> None:
    deadline = time.monotonic() + seconds
    while True:
        parts = direct.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
        assert parts == [], f"moto holds parts of a refused body: {parts}"
        if time.monotonic() >= deadline:
            return
        time.sleep(POLL)  # poll interval


def refused(r: Resp, status: int, code: str) -> None:
    assert (r.status, r.code) == (status, code), f"expected {status} {code}, got {r}"


# --------------------------------------------------------------------------
# 1. hex x-amz-content-sha256

def put_hex(gw, bucket, key, good: bytes, sent: bytes) -> Resp:
    target = target_of(bucket, key)
    s = sign_head(gw.http_port, "PUT", target, {"Content-Length": str(len(sent))},
                  hashlib.sha256(good).hexdigest())
    return send(gw.http_port, "PUT", target, s.headers, sent)


def test_put_hex_sha256_mismatch_is_never_stored(gw, moto, direct, keys, moto_log):
    data = os.urandom(200 * KIB)
    bad_key = new_key(keys, "hex-bad")
    r = put_hex(gw, moto.bucket, bad_key, data, flip(data, len(data) - 1))
    refused(r, 400, "XAmzContentSHA256Mismatch")
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "hex-ok")
    r = put_hex(gw, moto.bucket, ok_key, data, data)
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


def test_upload_part_hex_sha256_mismatch_is_never_a_part(gw, moto, direct, keys, moto_log):
    key = new_key(keys, "part-hex")
    upload_id = direct.create_multipart_upload(Bucket=moto.bucket, Key=key)["UploadId"]
    try:
        data = os.urandom(200 * KIB)
        target = f"/{moto.bucket}/{key}?partNumber=1&uploadId={upload_id}"

        def put_part(sent: bytes) -> Resp:
            s = sign_head(gw.http_port, "PUT", target, {"Content-Length": str(len(sent))},
                          hashlib.sha256(data).hexdigest())
            return send(gw.http_port, "PUT", target, s.headers, sent)

        r = put_part(flip(data, len(data) - 1))
        refused(r, 400, "XAmzContentSHA256Mismatch")
        assert_no_parts(direct, moto.bucket, key, upload_id)
        assert_upstream_saw_it(moto_log, moto.bucket, key)

        r = put_part(data)
        assert r.status == 200, r
        parts = direct.list_parts(Bucket=moto.bucket, Key=key, UploadId=upload_id)["Parts"]
        assert [(p["PartNumber"], p["Size"], p["ETag"].strip('"')) for p in parts] == \
            [(1, len(data), hashlib.md5(data).hexdigest())]
    finally:
        direct.abort_multipart_upload(Bucket=moto.bucket, Key=key, UploadId=upload_id)


# --------------------------------------------------------------------------
# 2. x-amz-checksum-crc32 header, UNSIGNED-PAYLOAD

def test_put_wrong_crc32_header_is_never_stored(gw, moto, direct, keys, moto_log):
    data = os.urandom(200 * KIB)

    def put(key: str, crc: str) -> Resp:
        target = target_of(moto.bucket, key)
        s = sign_head(gw.http_port, "PUT", target,
                      {"Content-Length": str(len(data)), "x-amz-checksum-crc32": crc},
                      "UNSIGNED-PAYLOAD")
        return send(gw.http_port, "PUT", target, s.headers, data)

    bad_key = new_key(keys, "crc-bad")
    refused(put(bad_key, crc32_b64(flip(data, len(data) - 1))), 400, "BadDigest")
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "crc-ok")
    r = put(ok_key, crc32_b64(data))
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


# --------------------------------------------------------------------------
# 3. a body cut short

def test_truncated_body_is_never_stored(gw, moto, direct, keys, moto_log):
    data = os.urandom(100_000)

    def put(key: str, cut_after: Optional[int]) -> Optional[Resp]:
        target = target_of(moto.bucket, key)
        s = sign_head(gw.http_port, "PUT", target, {"Content-Length": str(len(data))},
                      "UNSIGNED-PAYLOAD")
        return send(gw.http_port, "PUT", target, s.headers, data, cut_after=cut_after)

    bad_key = new_key(keys, "cut")
    assert put(bad_key, 50_000) is None
    assert_never_stored(direct, moto.bucket, bad_key, ABSENT_FOR_TRUNCATED)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "whole")
    r = put(ok_key, None)
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


# --------------------------------------------------------------------------
# 4-6. aws-chunked

# Three chunks of 64 KiB and a small last data chunk.
SIZES = [64 * KIB, 64 * KIB, 64 * KIB, 1000]


def cut_point(body: bytes, where: str) -> int:
    """Where to cut an aws-chunked body: half way, right before the final
    (0-length) chunk, or right before the trailer."""
    final = max(body.rfind(b"\r\n0;chunk-signature="), body.rfind(b"\r\n0\r\n")) + 2
    assert final > 2
    if where == "mid-body":
        return len(body) // 2
    if where == "before-final":
        return final
    assert where == "before-trailer"
    at = body.find(b"x-amz-checksum-crc32:", final)
    assert at > 0
    return at


def put_chunked(gw, bucket: str, key: str, data: bytes, mode: str, *,
                trailer: Optional[str] = None, target: Optional[str] = None,
                cut: Optional[str] = None, **frame_kw) -> Optional[Resp]:
    """PutObject of `data` as aws-chunked in `mode` (or a PUT to `target`,
    e.g. an UploadPart); `trailer` is the checksum value for
    x-amz-checksum-crc32 in the trailer modes; `cut`: send the body only up
    to that `cut_point` and close (then None)."""
    chunks = split(data, SIZES)
    target = target or target_of(bucket, key)
    signed_mode = mode != UNSIGNED_TRAILER
    # The framed length only depends on the sizes (signatures and a crc32
    # value have fixed lengths), so it is known before signing.
    dummy = Signed({}, "", "", b"", "0" * 64) if signed_mode else None
    trailer_kv = ("x-amz-checksum-crc32", trailer) if trailer is not None else None
    length = len(frame(chunks, dummy, trailer=trailer_kv))
    headers = {
        "Content-Length": str(length),
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    if trailer is not None:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    s = sign_head(gw.http_port, "PUT", target, headers, mode)
    body = frame(chunks, s if signed_mode else None, trailer=trailer_kv, **frame_kw)
    assert len(body) == length
    cut_after = cut_point(body, cut) if cut else None
    return send(gw.http_port, "PUT", target, s.headers, body, cut_after=cut_after)


@pytest.mark.parametrize("tamper", [
    {"tamper_data_of": len(SIZES) - 1},
    {"tamper_final_sig": True},
], ids=["last-data-chunk", "final-chunk-signature"])
def test_signed_chunks_tampered_are_never_stored(gw, moto, direct, keys, moto_log, tamper):
    data = os.urandom(sum(SIZES))
    bad_key = new_key(keys, "chunked-bad")
    r = put_chunked(gw, moto.bucket, bad_key, data, SIGNED_CHUNKS, **tamper)
    refused(r, 403, "SignatureDoesNotMatch")
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "chunked-ok")
    r = put_chunked(gw, moto.bucket, ok_key, data, SIGNED_CHUNKS)
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


@pytest.mark.parametrize("wrong_crc, tamper, status, code", [
    (True, {}, 400, "BadDigest"),
    (False, {"tamper_trailer_sig": True}, 403, "SignatureDoesNotMatch"),
], ids=["wrong-checksum", "trailer-signature"])
def test_signed_trailer_tampered_is_never_stored(gw, moto, direct, keys, moto_log,
                                                 wrong_crc, tamper, status, code):
    data = os.urandom(sum(SIZES))
    crc = crc32_b64(flip(data, 0)) if wrong_crc else crc32_b64(data)
    bad_key = new_key(keys, "trailer-bad")
    r = put_chunked(gw, moto.bucket, bad_key, data, SIGNED_CHUNKS_TRAILER, trailer=crc, **tamper)
    refused(r, status, code)
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "trailer-ok")
    r = put_chunked(gw, moto.bucket, ok_key, data, SIGNED_CHUNKS_TRAILER, trailer=crc32_b64(data))
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


def test_unsigned_trailer_wrong_checksum_is_never_stored(gw, moto, direct, keys, moto_log):
    data = os.urandom(sum(SIZES))
    bad_key = new_key(keys, "utrailer-bad")
    r = put_chunked(gw, moto.bucket, bad_key, data, UNSIGNED_TRAILER,
                    trailer=crc32_b64(flip(data, len(data) - 1)))
    refused(r, 400, "BadDigest")
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "utrailer-ok")
    r = put_chunked(gw, moto.bucket, ok_key, data, UNSIGNED_TRAILER, trailer=crc32_b64(data))
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


def test_unsigned_trailer_tampered_last_data_chunk_is_never_stored(gw, moto, direct, keys,
                                                                   moto_log):
    """The checksum is right for the data the client meant; one byte of the
    last data chunk changed on the way. Nothing else protects this mode."""
    data = os.urandom(sum(SIZES))
    bad_key = new_key(keys, "utrailer-last")
    r = put_chunked(gw, moto.bucket, bad_key, data, UNSIGNED_TRAILER,
                    trailer=crc32_b64(data), tamper_data_of=len(SIZES) - 1)
    refused(r, 400, "BadDigest")
    assert_never_stored(direct, moto.bucket, bad_key)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "utrailer-last-ok")
    r = put_chunked(gw, moto.bucket, ok_key, data, UNSIGNED_TRAILER, trailer=crc32_b64(data))
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


@pytest.mark.parametrize("mode, where", [
    (SIGNED_CHUNKS, "mid-body"),
    (SIGNED_CHUNKS, "before-final"),
    (SIGNED_CHUNKS_TRAILER, "mid-body"),
    (SIGNED_CHUNKS_TRAILER, "before-final"),
    (SIGNED_CHUNKS_TRAILER, "before-trailer"),
    (UNSIGNED_TRAILER, "mid-body"),
    (UNSIGNED_TRAILER, "before-final"),
    (UNSIGNED_TRAILER, "before-trailer"),
])
def test_chunked_body_cut_short_is_never_stored(gw, moto, direct, keys, moto_log, mode, where):
    """Every data byte may have arrived (before-final, before-trailer), yet
    without the end of the body nothing is stored."""
    data = os.urandom(sum(SIZES))
    crc = crc32_b64(data) if mode != SIGNED_CHUNKS else None
    bad_key = new_key(keys, f"chunked-cut-{where}")
    assert put_chunked(gw, moto.bucket, bad_key, data, mode, trailer=crc, cut=where) is None
    assert_never_stored(direct, moto.bucket, bad_key, ABSENT_FOR_TRUNCATED)
    assert_upstream_saw_it(moto_log, moto.bucket, bad_key)

    ok_key = new_key(keys, "chunked-cut-ok")
    r = put_chunked(gw, moto.bucket, ok_key, data, mode, trailer=crc)
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, ok_key, data)


@pytest.mark.parametrize("mode, tamper, cut, status, code", [
    (SIGNED_CHUNKS, {"tamper_final_sig": True}, None, 403, "SignatureDoesNotMatch"),
    (SIGNED_CHUNKS, {}, "before-final", None, None),
    (SIGNED_CHUNKS_TRAILER, {"tamper_trailer_sig": True}, None, 403, "SignatureDoesNotMatch"),
    (UNSIGNED_TRAILER, {"tamper_data_of": len(SIZES) - 1}, None, 400, "BadDigest"),
    (UNSIGNED_TRAILER, {}, "before-trailer", None, None),
], ids=["signed-final-signature", "signed-cut-before-final", "trailer-signature",
        "unsigned-trailer-last-data", "unsigned-trailer-cut-before-trailer"])
def test_upload_part_chunked_tampered_is_never_a_part(gw, moto, direct, keys, moto_log,
                                                      mode, tamper, cut, status, code):
    key = new_key(keys, "part-chunked")
    upload_id = direct.create_multipart_upload(Bucket=moto.bucket, Key=key)["UploadId"]
    try:
        data = os.urandom(sum(SIZES))
        crc = crc32_b64(data) if mode != SIGNED_CHUNKS else None
        target = f"/{moto.bucket}/{key}?partNumber=1&uploadId={upload_id}"
        r = put_chunked(gw, moto.bucket, key, data, mode, trailer=crc, target=target, cut=cut,
                        **tamper)
        if cut:
            assert r is None
            assert_no_parts(direct, moto.bucket, key, upload_id, ABSENT_FOR_TRUNCATED)
        else:
            refused(r, status, code)
            assert_no_parts(direct, moto.bucket, key, upload_id)
        assert_upstream_saw_it(moto_log, moto.bucket, key)

        r = put_chunked(gw, moto.bucket, key, data, mode, trailer=crc, target=target)
        assert r.status == 200, r
        parts = direct.list_parts(Bucket=moto.bucket, Key=key, UploadId=upload_id)["Parts"]
        assert [(p["PartNumber"], p["Size"], p["ETag"].strip('"')) for p in parts] == \
            [(1, len(data), hashlib.md5(data).hexdigest())]
    finally:
        direct.abort_multipart_upload(Bucket=moto.bucket, Key=key, UploadId=upload_id)


# --------------------------------------------------------------------------
# control: moto itself stores bodies that fail verification

def test_control_moto_stores_what_fails_verification(moto, direct, keys):
    """Sent straight to moto, a body with a wrong x-amz-content-sha256 and a
    wrong x-amz-checksum-crc32 is stored: only the gateway stands between
    such a body and an object, so the cases above are meaningful."""
    data = os.urandom(64 * KIB)
    sent = flip(data, len(data) - 1)
    key = new_key(keys, "control")
    port = int(moto.endpoint.rsplit(":", 1)[1])
    target = target_of(moto.bucket, key)
    hdrs = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(sent)),
            "x-amz-checksum-crc32": crc32_b64(data)}
    req = AWSRequest(method="PUT", url=f"{moto.endpoint}{target}", headers=hdrs)
    signer = S3SigV4Auth(Credentials(moto.access_key_id, moto.secret_access_key), "s3", REGION)
    signer.payload = lambda request: hashlib.sha256(data).hexdigest()
    signer.add_auth(req)
    r = send(port, "PUT", target, dict(req.headers.items()), sent)
    assert r.status == 200, r
    assert_stored(direct, moto.bucket, key, sent)
