"""The decision log and `s3gate replay`, with real traffic.

A gateway in front of its own Garage (bucket ``analytics-raw``) decides
with a copy of the repository's egress policy and writes every decision to
its ``decision_log``. boto3 clients (``etl``, ``janitor``) make requests
through it; then ``s3gate replay`` decides the recorded requests again:
with the same policies nothing changes (exit 0); with a copy whose
EtlReadsWhatItWrote statement is narrowed to ``ingest/keep/*``, exactly the
reads outside that prefix flip from allow to deny (exit 1), named by their
request ids and grouped under the statement that used to allow them.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (GATEWAY_LOGS, GARAGE_PY, REGION, REPO, S3GATE, TETHER_PY,
                      free_port, stop_tethered, wait_for_port)

BUCKET = "analytics-raw"
ETL = ("AKIAETL0000000000001", "etl-secret-000000000000000000000001")
JANITOR = ("AKIAJANITOR000000001", "janitor-secret-00000000000000000001")
POLICY = REPO / "policies" / "egress" / "policy.yaml"


@pytest.fixture(scope="module")
def garage(session_dir):
    gdir = session_dir / "garage-replay"
    proc = subprocess.Popen([sys.executable, str(GARAGE_PY), str(gdir), "--bucket", BUCKET],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    try:
        info = json.loads(line)
    except ValueError:
        stop_tethered(proc)
        raise RuntimeError(f"garage.py said {line!r}")
    yield info
    stop_tethered(proc)


@pytest.fixture(scope="module")
def gateway(session_dir, garage):
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    gdir = session_dir / "gw-replay"
    (gdir / "policies").mkdir(parents=True)
    (gdir / "policies" / POLICY.name).write_text(POLICY.read_text())
    port = free_port()
    config = gdir / "gateway.yaml"
    config.write_text(f"""listen: [{{ address: 127.0.0.1:{port} }}]
region: {REGION}
principals:
  - {{ name: etl, access_key_id: {ETL[0]}, secret_access_key: {ETL[1]} }}
  - {{ name: janitor, access_key_id: {JANITOR[0]}, secret_access_key: {JANITOR[1]} }}
upstreams:
  up:
    kind: s3-compatible
    endpoint: {garage["endpoint"]}
    region: {garage["region"]}
    addressing: path
    credentials:
      access_key_id: {garage["access_key_id"]}
      secret_access_key: {garage["secret_access_key"]}
buckets:
  {BUCKET}: {{ upstream: up, owner: "111122223333" }}
policies:
  paths: [policies]
decision_log:
  path: {gdir / "decisions.jsonl"}
  rotate: {{ max_bytes: 10000000, keep: 2 }}
""")
    log_path = gdir / "gateway.log"
    GATEWAY_LOGS["replay"] = log_path
    env = dict(os.environ, NO_COLOR="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(TETHER_PY), str(S3GATE), "serve", "--config", str(config)],
                                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env)
    try:
        wait_for_port(port, "gateway replay", log_path, proc)
    except BaseException:
        stop_tethered(proc)
        raise
    yield {"dir": gdir, "config": config, "endpoint": f"http://127.0.0.1:{port}",
           "decisions": gdir / "decisions.jsonl"}
    stop_tethered(proc)


def client(gateway, who):
    cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=gateway["endpoint"], region_name=REGION,
                                          aws_access_key_id=who[0], aws_secret_access_key=who[1], config=cfg)


def request_id(call) -> tuple[str, bool]:
    """The gateway's request id of a boto3 call, and whether it was allowed."""
    try:
        r = call()
        return r["ResponseMetadata"]["RequestId"], True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
        return e.response["ResponseMetadata"]["RequestId"], False


def decisions(path: Path, want: int, timeout: float = 10) -> list[dict]:
    """The decision log once it holds `want` lines (written by another thread)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= want or time.monotonic() >= deadline:
            return [json.loads(l) for l in lines]
        time.sleep(0.05)  # polling interval, not a synchronisation sleep


def replay(gateway, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(S3GATE), "replay", "--config", str(gateway["config"]),
                           "--decisions", str(gateway["decisions"]), *extra],
                          capture_output=True, text=True)


def test_replay_names_exactly_the_requests_a_narrowed_policy_flips(gateway, tmp_path):
    etl, janitor = client(gateway, ETL), client(gateway, JANITOR)
    ids = {}
    ids["put a"] = request_id(lambda: etl.put_object(Bucket=BUCKET, Key="ingest/a.txt", Body=b"a"))
    ids["put b"] = request_id(lambda: etl.put_object(Bucket=BUCKET, Key="ingest/keep/b.txt", Body=b"b"))
    ids["get a"] = request_id(lambda: etl.get_object(Bucket=BUCKET, Key="ingest/a.txt"))
    ids["get b"] = request_id(lambda: etl.get_object(Bucket=BUCKET, Key="ingest/keep/b.txt"))
    ids["head a"] = request_id(lambda: etl.head_object(Bucket=BUCKET, Key="ingest/a.txt"))
    ids["get secret"] = request_id(lambda: etl.get_object(Bucket=BUCKET, Key="secret/x"))
    ids["janitor lists uploads"] = request_id(
        lambda: janitor.list_multipart_uploads(Bucket=BUCKET, ExpectedBucketOwner="111122223333"))
    allowed = {k for k, (_, ok) in ids.items() if ok}
    assert allowed == set(ids) - {"get secret"}, ids

    records = decisions(gateway["decisions"], len(ids))
    by_id = {r["request_id"]: r for r in records}
    assert {i for i, _ in ids.values()} <= set(by_id), (ids, records)
    get_a = by_id[ids["get a"][0]]
    assert get_a["effect"] == "Allow" and get_a["operation"] == "GetObject"
    assert get_a["needs"] == [{"action": "s3:GetObject", "resource": "arn:aws:s3:::analytics-raw/ingest/a.txt"}]
    assert get_a["statements"][0].endswith("#EtlReadsWhatItWrote")
    assert get_a["context"]["aws:username"] == ["etl"]
    assert get_a["bucket_rules"]["owner"] == "111122223333"
    listing = by_id[ids["janitor lists uploads"][0]]
    assert listing["context"]["s3gate:expectedbucketowner"] == ["111122223333"]
    text = gateway["decisions"].read_text()
    for secret in (ETL[1], JANITOR[1], "Signature=", "Credential="):
        assert secret not in text

    # The same policies: nothing changes.
    r = replay(gateway)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(records)} decision(s) replayed, 0 would change" in r.stdout, r.stdout

    # Narrow EtlReadsWhatItWrote to ingest/keep/*.
    narrowed = tmp_path / "narrowed"
    narrowed.mkdir()
    src = POLICY.read_text()
    statement = re.search(r"  - Sid: EtlReadsWhatItWrote\n(    .*\n)+", src).group(0)
    assert "Resource: arn:aws:s3:::analytics-raw/ingest/*" in statement
    (narrowed / POLICY.name).write_text(src.replace(
        statement, statement.replace("analytics-raw/ingest/*", "analytics-raw/ingest/keep/*")))
    r = replay(gateway, "--policies", str(narrowed))
    assert r.returncode == 1, r.stdout + r.stderr
    print(r.stdout)
    flipped = set(re.findall(r"\[request (\S+);", r.stdout))
    assert flipped == {ids["get a"][0], ids["head a"][0]}, r.stdout
    assert "allow → deny: 2 request(s)" in r.stdout, r.stdout
    assert "deny → allow" not in r.stdout, r.stdout
    assert "no statement allows it any more (was allowed by" in r.stdout
    assert "#EtlReadsWhatItWrote)" in r.stdout, r.stdout
    assert f"{len(records)} decision(s) replayed, 2 would change" in r.stdout, r.stdout


def test_delete_objects_logs_one_decision_per_key(gateway):
    etl = client(gateway, ETL)
    keys = ["ingest/del-1.txt", "secret/del-2.txt"]
    rid, _ = request_id(lambda: etl.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]}))
    deadline = time.monotonic() + 10
    while True:
        mine = [r for r in decisions(gateway["decisions"], 0) if r["request_id"] == rid]
        if len(mine) >= len(keys) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)  # polling interval, not a synchronisation sleep
    assert sorted(r["key"] for r in mine) == sorted(keys), mine
    assert {r["operation"] for r in mine} == {"DeleteObjects"}, mine
    assert all(r["needs"][0]["action"] == "s3:DeleteObject" for r in mine), mine
