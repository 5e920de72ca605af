"""Upstream signatures checked by another implementation: a stand-in
upstream on loopback (reached through `connect_to`) recomputes every SigV4
signature with botocore and checks the Host header, the region and the
signing name — for an AWS regional bucket in both addressing styles, an
access point ARN, an S3 on Outposts access point ARN, and an IBM COS
endpoint."""
import http.server
import ssl
import json
import re
import subprocess
import threading
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import ALICE_KEY, ALICE_SECRET, REPO, S3GATE, free_port, stop_tethered, wait_for_port

UP_KEY, UP_SECRET = "AKIAUPSTREAMEXAMPLE1", "upstream-secret-for-the-signature-checker"
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})")


class Checker(http.server.BaseHTTPRequestHandler):
    """Verify the request's signature with botocore; answer what was seen."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def check(self):
        try:
            self._check()
        except Exception as e:  # report the checker's own failure to the test
            payload = repr(e).encode()
            self.send_response(500)
            self.send_header("x-checker", json.dumps({"ok": False, "error": repr(e)}))
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def _check(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        m = AUTH.fullmatch(self.headers.get("authorization", ""))
        seen = {"host": self.headers.get("host"), "path": self.path, "ok": False,
                "copy_source": self.headers.get("x-amz-copy-source")}
        if m:
            akid, date, region, service, signed, signature = m.groups()
            seen.update(region=region, service=service)
            headers = {h: self.headers.get(h) for h in signed.split(";")}
            req = AWSRequest(method=self.command, url=f"http://{headers['host']}{self.path}", headers=headers, data=body)
            auth = S3SigV4Auth(Credentials(UP_KEY, UP_SECRET), service, region)
            req.context["timestamp"] = self.headers.get("x-amz-date")
            canonical = auth.canonical_request(req)
            expected = auth.signature(auth.string_to_sign(req, canonical), req)
            seen["ok"] = akid == UP_KEY and expected == signature and date == req.context["timestamp"][:8]
        # Writes answer with an empty body (botocore reads a 200 PutObject
        # body as an error document).
        payload = json.dumps(seen).encode() if self.command == "GET" else b""
        self.send_response(200 if seen["ok"] else 403)
        self.send_header("etag", '"0123456789abcdef0123456789abcdef"')
        self.send_header("content-type", "application/json")
        self.send_header("x-checker", json.dumps(seen))
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = check


# Server names the `connect_to` TLS stand-in was asked for.
SNI_SEEN: list = []


@pytest.fixture(scope="module")
def upstream_ca(tmp_path_factory):
    """A CA and a `localhost` server certificate it signed (webpki refuses a
    self-signed CA certificate used as the server's own)."""
    d = tmp_path_factory.mktemp("upstream-ca")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=s3gate test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,DNS:storage.example.test,IP:127.0.0.1\n"
                              "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, upstream_ca):
    d = tmp_path_factory.mktemp("signing")
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Checker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The same checker over TLS, with a certificate only `tls.ca_file` trusts.
    tls_port = free_port()
    tls_server = http.server.ThreadingHTTPServer(("127.0.0.1", tls_port), Checker)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(upstream_ca[1]), str(upstream_ca[2]))
    tls_server.socket = ctx.wrap_socket(tls_server.socket, server_side=True)
    threading.Thread(target=tls_server.serve_forever, daemon=True).start()
    # A second one for the upstream that does not trust the CA (a pooled
    # connection to the first must not be reused for it).
    tls_port2 = free_port()
    tls_server2 = http.server.ThreadingHTTPServer(("127.0.0.1", tls_port2), Checker)
    tls_server2.socket = ctx.wrap_socket(tls_server2.socket, server_side=True)
    threading.Thread(target=tls_server2.serve_forever, daemon=True).start()
    # One reached through `connect_to` under another name: it records the
    # server name the gateway's TLS client asked for (SNI).
    tls_port3 = free_port()
    tls_server3 = http.server.ThreadingHTTPServer(("127.0.0.1", tls_port3), Checker)
    ctx3 = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx3.load_cert_chain(str(upstream_ca[1]), str(upstream_ca[2]))
    ctx3.sni_callback = lambda sock, name, context: SNI_SEEN.append(name)
    tls_server3.socket = ctx3.wrap_socket(tls_server3.socket, server_side=True)
    threading.Thread(target=tls_server3.serve_forever, daemon=True).start()
    gw_port = free_port()
    creds = f"credentials: {{ access_key_id: {UP_KEY}, secret_access_key: {UP_SECRET} }}"
    (d / "gateway.yaml").write_text(f"""
listen: [{{ address: 127.0.0.1:{gw_port} }}]
region: us-east-1
principals: [{{ name: alice, access_key_id: {ALICE_KEY}, secret_access_key: {ALICE_SECRET} }}]
upstreams:
  aws-west: {{ kind: aws, region: us-west-2, endpoint: "http://s3.us-west-2.amazonaws.com", connect_to: "127.0.0.1:{port}", {creds} }}
  aws-west-path: {{ kind: aws, region: us-west-2, endpoint: "http://s3.us-west-2.amazonaws.com", addressing: path, connect_to: "127.0.0.1:{port}", {creds} }}
  outpost-west: {{ kind: outposts, region: us-west-2, endpoint: "http://s3-outposts.us-west-2.amazonaws.com", connect_to: "127.0.0.1:{port}", {creds} }}
  cos-eu: {{ kind: cos, region: eu-de, endpoint: "http://s3.eu-de.cloud-object-storage.appdomain.cloud", connect_to: "127.0.0.1:{port}", {creds} }}
  secure: {{ kind: s3-compatible, region: us-east-1, endpoint: "https://localhost:{tls_port}", tls: {{ ca_file: "{upstream_ca[0]}" }}, {creds} }}
  untrusted: {{ kind: s3-compatible, region: us-east-1, endpoint: "https://localhost:{tls_port2}", {creds} }}
  named-tls: {{ kind: s3-compatible, region: us-east-1, endpoint: "https://storage.example.test", connect_to: "127.0.0.1:{tls_port3}", tls: {{ ca_file: "{upstream_ca[0]}" }}, {creds} }}
buckets:
  regional: {{ upstream: aws-west, target: real-regional }}
  regional-path: {{ upstream: aws-west-path, target: real-path }}
  shared-datasets: {{ upstream: aws-west, target: "arn:aws:s3:us-west-2:444455556666:accesspoint/datasets" }}
  reports: {{ upstream: outpost-west, target: "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/reports" }}
  media: {{ upstream: cos-eu, target: media-prod, owner: "cos-instance-0f3e", expected_bucket_owner: enforce, request_payer: deny }}
  secure-bucket: {{ upstream: secure }}
  untrusted-bucket: {{ upstream: untrusted }}
  sni-bucket: {{ upstream: named-tls }}
""")
    log = open(d / "gateway.log", "wb")
    proc = subprocess.Popen([str(Path(__import__("sys").executable).parent / "python"), str(REPO / "tests/support/tether.py"), str(S3GATE), "serve", "--config", str(d / "gateway.yaml")],
                            stdin=subprocess.PIPE, stdout=log, stderr=log)
    wait_for_port(gw_port, "gateway", d / "gateway.log", proc)
    yield f"http://127.0.0.1:{gw_port}", d
    stop_tethered(proc)
    server.shutdown()
    tls_server.shutdown()
    tls_server2.shutdown()
    tls_server3.shutdown()


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ALICE_KEY,
                        aws_secret_access_key=ALICE_SECRET,
                        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


CASES = [
    ("regional", "real-regional.s3.us-west-2.amazonaws.com", "/dir/a%20b%2Bc.txt", "us-west-2", "s3"),
    ("regional-path", "s3.us-west-2.amazonaws.com", "/real-path/dir/a%20b%2Bc.txt", "us-west-2", "s3"),
    ("shared-datasets", "datasets-444455556666.s3-accesspoint.us-west-2.amazonaws.com", "/dir/a%20b%2Bc.txt", "us-west-2", "s3"),
    ("reports", "reports-123456789012.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com", "/dir/a%20b%2Bc.txt", "us-west-2", "s3-outposts"),
    ("media", "s3.eu-de.cloud-object-storage.appdomain.cloud", "/media-prod/dir/a%20b%2Bc.txt", "eu-de", "s3"),
    ("secure-bucket", "localhost:PORT", "/secure-bucket/dir/a%20b%2Bc.txt", "us-east-1", "s3"),
]


@pytest.mark.parametrize("bucket,host,path,region,service", CASES, ids=[c[0] for c in CASES])
def test_signature_host_region_and_signing_name(gateway, bucket, host, path, region, service):
    endpoint, _ = gateway
    c = client(endpoint)
    for call in (lambda: c.get_object(Bucket=bucket, Key="dir/a b+c.txt"),
                 lambda: c.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"signed body")):
        r = call()
        seen = json.loads(r["ResponseMetadata"]["HTTPHeaders"]["x-checker"])
        assert seen["ok"], f"botocore does not agree with the signature: {seen}"
        got_host = re.sub(r":\d+$", ":PORT", seen["host"]) if host.endswith(":PORT") else seen["host"]
        assert (got_host, seen["path"].split("?")[0], seen["region"], seen["service"]) == (host, path, region, service)


def test_upstream_tls_is_verified(gateway):
    endpoint, _ = gateway
    with pytest.raises(Exception) as e:
        client(endpoint).get_object(Bucket="untrusted-bucket", Key="k")
    assert "BadGateway" in str(e.value) or "502" in str(e.value), e.value


def test_connect_to_keeps_the_endpoints_host_and_sni(gateway):
    """`connect_to` dials another address, but the TLS handshake asks for
    the endpoint's name (SNI, and the certificate is checked against it)
    and the request is addressed and signed for it."""
    endpoint, _ = gateway
    r = client(endpoint).get_object(Bucket="sni-bucket", Key="dir/a b+c.txt")
    seen = json.loads(r["ResponseMetadata"]["HTTPHeaders"]["x-checker"])
    assert seen["ok"], seen
    assert seen["host"] == "storage.example.test", seen
    assert SNI_SEEN and set(SNI_SEEN) == {"storage.example.test"}, SNI_SEEN


COPY_CASES = [
    # The access point's ARN, `<arn>/object/<key>` (encoded once), as S3's
    # CopyObject reference asks for an access point source.
    ("shared-datasets", "arn:aws:s3:us-west-2:444455556666:accesspoint/datasets/object/dir/src%20a.txt"),
    ("reports", "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/reports"
                "/object/dir/src%20a.txt"),
    # A renamed bucket: the upstream's own name, never the client-visible one.
    ("regional", "/real-regional/dir/src%20a.txt"),
]


@pytest.mark.parametrize("bucket,expected", COPY_CASES, ids=[c[0] for c in COPY_CASES])
def test_copy_source_names_the_access_point(gateway, bucket, expected):
    endpoint, _ = gateway
    c = client(endpoint)
    r = c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "dir/src a.txt"})
    seen = json.loads(r["ResponseMetadata"]["HTTPHeaders"]["x-checker"])
    assert seen["ok"], seen
    assert seen["copy_source"] == expected, seen


def test_check_warns_about_cos_rules_cos_ignores(gateway, tmp_path):
    _, d = gateway
    cfg = (d / "gateway.yaml").read_text().replace("expected_bucket_owner: enforce, request_payer: deny", "")
    (tmp_path / "g.yaml").write_text(cfg)
    r = subprocess.run([str(S3GATE), "check", "--config", str(tmp_path / "g.yaml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "COS ignores x-amz-expected-bucket-owner" in r.stderr, r.stderr
    assert "COS ignores x-amz-request-payer" in r.stderr, r.stderr
