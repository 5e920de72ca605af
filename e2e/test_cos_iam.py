"""COS with IBM Cloud IAM credentials (`credentials: { ibm_iam }`): the
gateway exchanges the API key for bearer tokens at an IAM stand-in and
sends `Authorization: Bearer` to a COS stand-in that accepts only live
tokens (tests/support/cos_iam.py, in front of the session's Garage).
boto3 and ibm_boto3 talk SigV4 to the gateway as usual."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import ibm_boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from ibm_botocore.client import Config as IbmConfig
from ibm_botocore.exceptions import ClientError as IbmClientError

from conftest import (ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET, GARAGE_BUCKET, REPO, S3GATE,
                      TETHER_PY, free_port, stop_tethered, wait_for_port)

API_KEY = "e2e-ibm-api-key-0123456789abcdef"
WRONG_KEY = "e2e-wrong-api-key-fedcba9876543210"
INSTANCE = "crn:v1:bluemix:public:cloud-object-storage:global:a/0123456789:e2e-instance::"
OWNER = "e2e-instance"
LIFETIME = 6  # seconds a token lives at the IAM stand-in

POLICY = """Version: "2012-10-17"
Statement:
  - Sid: AliceWorks
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"
  - Sid: BobReads
    Effect: Allow
    Principal: bob
    Action: [s3:GetObject, s3:ListBucket]
    Resource: "*"
"""


@pytest.fixture(scope="module")
def stand_ins(garage):
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / "cos_iam.py"), "--api-key", API_KEY,
         "--expires-in", str(LIFETIME), "--garage", garage.endpoint,
         "--garage-key", garage.access_key_id, "--garage-secret", garage.secret_access_key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    info = json.loads(proc.stdout.readline())
    yield info
    stop_tethered(proc)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def start_gateway(d: Path, stand_ins, api_key):
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (d / "policy.yaml").write_text(POLICY)
    config = f"""listen: [{{ address: 127.0.0.1:{port} }}]
region: us-east-1
principals:
  - {{ name: alice, access_key_id: {ALICE_KEY}, secret_access_key: {ALICE_SECRET} }}
  - {{ name: bob, access_key_id: {BOB_KEY}, secret_access_key: {BOB_SECRET} }}
upstreams:
  cos:
    kind: cos
    endpoint: {stand_ins['cos']}
    region: us-south
    checksum_trailers: false
    service_instance_id: "{INSTANCE}"
    credentials:
      ibm_iam:
        api_key: {{ env: S3GATE_E2E_IBM_API_KEY }}
        token_url: {stand_ins['iam']}/identity/token
buckets:
  cosdata:
    upstream: cos
    target: {GARAGE_BUCKET}
    owner: "{OWNER}"
    expected_bucket_owner: enforce
    request_payer: deny
  "*": {{ upstream: cos, expected_bucket_owner: passthrough }}
policies: {{ paths: [policy.yaml] }}
audit: {{ path: {d / 'audit.jsonl'} }}
"""
    (d / "gateway.yaml").write_text(config)
    log_path = d / "gateway.log"
    env = dict(os.environ, S3GATE_E2E_IBM_API_KEY=api_key, NO_COLOR="1",
               S3GATE_LOG="debug,pingora_core=warn,pingora_proxy=warn")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TETHER_PY), str(S3GATE), "serve", "--config", str(d / "gateway.yaml")],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env)
    wait_for_port(port, "gateway (cos iam)", log_path, proc)
    return proc, f"http://127.0.0.1:{port}", d


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, stand_ins):
    proc, endpoint, d = start_gateway(tmp_path_factory.mktemp("cos-iam"), stand_ins, API_KEY)
    yield endpoint, d
    stop_tethered(proc)


def boto(endpoint, key=ALICE_KEY, secret=ALICE_SECRET):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def ibm(endpoint):
    return ibm_boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=ALICE_KEY, aws_secret_access_key=ALICE_SECRET,
        config=IbmConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                         retries={"max_attempts": 1}))


def test_one_token_while_it_lives_then_a_new_one(gateway, stand_ins):
    endpoint, _ = gateway
    b, i = boto(endpoint), ibm(endpoint)
    before = get_json(stand_ins["iam"] + "/_stats")["exchanges"]
    seen_before = len(get_json(stand_ins["cos"] + "/_seen"))
    t0 = time.monotonic()
    b.put_object(Bucket="cosdata", Key="iam/boto3.txt", Body=b"from boto3")
    i.put_object(Bucket="cosdata", Key="iam/ibm.txt", Body=b"from ibm_boto3")
    assert i.get_object(Bucket="cosdata", Key="iam/boto3.txt")["Body"].read() == b"from boto3"
    assert b.get_object(Bucket="cosdata", Key="iam/ibm.txt")["Body"].read() == b"from ibm_boto3"
    first = get_json(stand_ins["cos"] + "/_seen")[seen_before:]
    assert time.monotonic() - t0 < LIFETIME / 2, "the first requests ran within the token's life"
    assert len(first) == 4 and len({s["token"] for s in first}) == 1, first
    assert get_json(stand_ins["iam"] + "/_stats")["exchanges"] <= before + 1

    # Keep working until the gateway uses another token: every request must
    # succeed (the COS stand-in refuses expired tokens with 403).
    deadline = time.monotonic() + 60
    n = 0
    while True:
        n += 1
        client = b if n % 2 else i
        assert client.get_object(Bucket="cosdata", Key="iam/boto3.txt")["Body"].read() == b"from boto3"
        tokens = [s["token"] for s in get_json(stand_ins["cos"] + "/_seen")[seen_before:]]
        if tokens[-1] != tokens[0]:
            break
        assert time.monotonic() < deadline, "the gateway never renewed its token"
        time.sleep(0.2)  # pacing between requests, not synchronisation
    assert tokens == sorted(tokens), "a newer token, never back to an older one"
    assert len(set(tokens)) == 2, tokens
    # One exchange per token: the renewal did not exchange once per request.
    stats = get_json(stand_ins["iam"] + "/_stats")
    assert stats["exchanges"] - before <= 2
    # Renewed ahead of expiry, in the background: the next token was issued
    # in the old one's last third (from 4 s), well before requests would
    # have had to wait for it (its last tenth, from 5.4 s).
    old, new = stats["issued_at"][tokens[0] - 1], stats["issued_at"][tokens[-1] - 1]
    assert LIFETIME * 2 / 3 - 0.1 <= new - old < LIFETIME * 0.9 - 0.2, new - old


def test_service_instance_on_list_buckets_and_create_bucket(gateway, stand_ins):
    endpoint, _ = gateway
    b = boto(endpoint)
    n = len(get_json(stand_ins["cos"] + "/_seen"))
    names = [x["Name"] for x in b.list_buckets()["Buckets"]]
    assert GARAGE_BUCKET in names
    try:
        b.create_bucket(Bucket="e2e-cos-iam-new")
    except ClientError:
        pass  # whether Garage lets this key create buckets does not matter here
    seen = get_json(stand_ins["cos"] + "/_seen")[n:]
    by = {(s["method"], s["path"].split("?")[0]): s for s in seen}
    assert by[("GET", "/")]["instance"] == INSTANCE, seen
    assert by[("PUT", "/e2e-cos-iam-new")]["instance"] == INSTANCE, seen
    # Other requests do not carry it.
    b.head_bucket(Bucket="cosdata")
    assert get_json(stand_ins["cos"] + "/_seen")[-1]["instance"] is None


def test_policies_owner_payer_and_audit_unchanged(gateway):
    endpoint, d = gateway
    alice, bob = boto(endpoint), boto(endpoint, BOB_KEY, BOB_SECRET)
    alice.put_object(Bucket="cosdata", Key="iam/rules.txt", Body=b"x")
    assert bob.get_object(Bucket="cosdata", Key="iam/rules.txt")["Body"].read() == b"x"
    with pytest.raises(ClientError) as e:
        bob.put_object(Bucket="cosdata", Key="iam/bob.txt", Body=b"no")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as e:
        alice.get_object(Bucket="cosdata", Key="iam/rules.txt", ExpectedBucketOwner="someone-else")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        alice.get_object(Bucket="cosdata", Key="iam/rules.txt", RequestPayer="requester")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    up = alice.create_multipart_upload(Bucket="cosdata", Key="iam/mp.bin")["UploadId"]
    alice.upload_part(Bucket="cosdata", Key="iam/mp.bin", UploadId=up, PartNumber=1, Body=b"p" * 100)
    alice.abort_multipart_upload(Bucket="cosdata", Key="iam/mp.bin", UploadId=up)
    records = [json.loads(line) for line in (d / "audit.jsonl").read_text().splitlines()]
    r = [r for r in records if r["upload_id"] == up][-1]
    assert (r["outcome"], r["principal"], r["initiator"]) == ("aborted", "alice", "alice"), r
    assert r["parts_before"] == {"count": 1, "bytes": 100}
    assert r["upstream"]["name"] == "cos"
    ok = subprocess.run([str(S3GATE), "audit", "verify", str(d / "audit.jsonl")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_the_key_never_appears_in_the_log(gateway):
    _, d = gateway
    assert API_KEY not in (d / "gateway.log").read_text(errors="replace")


def test_a_wrong_api_key_is_a_clear_502(tmp_path, stand_ins):
    refused = get_json(stand_ins["iam"] + "/_stats")["refused"]
    proc, endpoint, d = start_gateway(tmp_path / "wrong", stand_ins, WRONG_KEY)
    try:
        for client in (boto(endpoint), ibm(endpoint)):
            with pytest.raises((ClientError, IbmClientError)) as e:
                client.put_object(Bucket="cosdata", Key="iam/never.txt", Body=b"x")
            resp = e.value.response
            assert resp["ResponseMetadata"]["HTTPStatusCode"] == 502, resp
            assert "IBM Cloud IAM" in resp["Error"]["Message"], resp
            assert "400" in resp["Error"]["Message"], resp
            assert WRONG_KEY not in resp["Error"]["Message"]
        assert get_json(stand_ins["iam"] + "/_stats")["refused"] > refused
    finally:
        stop_tethered(proc)
    assert WRONG_KEY not in (d / "gateway.log").read_text(errors="replace")
