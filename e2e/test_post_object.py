"""POST Object (browser-based uploads) and CORS through the gateway.

This module starts its own gateway (plain HTTP) in front of the session's
Garage and moto, with a policy folder and a ``cors`` rule on each bucket (the
README's example rule). Forms are made by boto3's ``generate_presigned_post``
and sent with ``requests`` (or byte-exact with ``http.client``, as a browser
shapes them); every outcome is checked upstream through a direct client.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET, GATEWAY_LOGS, REGION,
                      S3GATE, TETHER_PY, free_port, stop_tethered, wait_for_port)

ORIGIN = "http://app.example.test"

# The README's CORS example (README.md, "POST Object and CORS").
CORS_RULE = """    cors:
      - allowed_origins: ["http://app.example.test", "https://*.example.test"]
        allowed_methods: [GET, PUT, POST]
        allowed_headers: ["*"]
        expose_headers: [ETag]
        max_age: 600"""


def _policy(buckets):
    lines = ['Version: "2012-10-17"', "Statement:"]
    for b in buckets:
        lines += [
            f"  - Sid: AliceUploads{b.replace('-', '')}",
            "    Effect: Allow",
            "    Principal: alice",
            "    Action: [s3:PutObject, s3:GetObject]",
            f"    Resource: arn:aws:s3:::{b}/uploads/*",
        ]
    return "\n".join(lines) + "\n"


class PostGateway:
    def __init__(self, endpoint, port, log_path, upstreams):
        self.endpoint = endpoint
        self.port = port
        self.log_path = log_path
        self.upstreams = upstreams  # bucket -> Upstream

    def presigner(self, key=ALICE_KEY, secret=ALICE_SECRET):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def pgw(session_dir, garage, moto):
    if not S3GATE.exists():
        pytest.exit(f"{S3GATE} is missing: build the gateway first", returncode=2)
    gdir = session_dir / "gw-post"
    gdir.mkdir()
    pdir = gdir / "policies"
    pdir.mkdir()
    (pdir / "post.yaml").write_text(_policy([garage.bucket, moto.bucket]))
    port = free_port()
    config = f"""listen:
  - address: 127.0.0.1:{port}
region: {REGION}
hostnames: [localhost]
policies:
  paths: [{pdir}]
principals:
  - {{ name: alice, access_key_id: {ALICE_KEY}, secret_access_key: {ALICE_SECRET} }}
  - {{ name: bob, access_key_id: {BOB_KEY}, secret_access_key: {BOB_SECRET} }}
upstreams:
  garage:
    kind: s3-compatible
    endpoint: {garage.endpoint}
    region: {garage.region}
    addressing: path
    credentials:
      access_key_id: {garage.access_key_id}
      secret_access_key: {garage.secret_access_key}
  moto:
    kind: s3-compatible
    endpoint: {moto.endpoint}
    region: {moto.region}
    addressing: path
    credentials:
      access_key_id: {moto.access_key_id}
      secret_access_key: {moto.secret_access_key}
buckets:
  {garage.bucket}:
    upstream: garage
{CORS_RULE}
  {moto.bucket}:
    upstream: moto
{CORS_RULE}
"""
    (gdir / "gateway.yaml").write_text(config)
    log_path = gdir / "gateway.log"
    GATEWAY_LOGS["post"] = log_path
    env = dict(os.environ, NO_COLOR="1")
    env.setdefault("S3GATE_LOG", "info,pingora_core=warn,pingora_proxy=warn")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TETHER_PY), str(S3GATE), "serve", "--config",
             str(gdir / "gateway.yaml")],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env)
    try:
        wait_for_port(port, "gateway post (http)", log_path, proc)
    except BaseException:
        stop_tethered(proc)
        raise
    yield PostGateway(f"http://127.0.0.1:{port}", port, log_path,
                      {garage.bucket: garage, moto.bucket: moto})
    stop_tethered(proc)


@pytest.fixture(params=["garage", "moto"])
def up(request, pgw):
    upstream = request.getfixturevalue(request.param)
    request.node._gateway_log = (pgw.log_path, pgw.log_path.stat().st_size)
    return upstream


def new_key(label):
    return f"uploads/{label}-{uuid.uuid4().hex[:10]}"


def exists(up, key):
    try:
        up.client().head_object(Bucket=up.bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def code_of(resp):
    return ET.fromstring(resp.content).findtext("Code")


def send(post, data, filename="data.bin", extra=None):
    fields = dict(post["fields"], **(extra or {}))
    return requests.post(post["url"], data=fields, files={"file": (filename, data)},
                         allow_redirects=False, timeout=60)


def form_body(fields, data, boundary, filename="data.bin", close=True):
    """multipart/form-data as browsers write it (fields, then the file)."""
    out = b""
    for k, v in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                f"{v}\r\n").encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    out += data
    if close:
        out += f"\r\n--{boundary}--\r\n".encode()
    return out


def raw_post(pgw, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", pgw.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------
# uploads that land

def test_presigned_post_lands_byte_exact(pgw, up):
    key = new_key("big")
    data = os.urandom(3 * 1024 * 1024 + 17)
    post = pgw.presigner().generate_presigned_post(
        up.bucket, key, Conditions=[["content-length-range", 1, 10 * 1024 * 1024]],
        ExpiresIn=300)
    r = send(post, data)
    assert r.status_code == 204, r.text
    got = up.client().get_object(Bucket=up.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_success_action_status_201_answers_post_response(pgw, up):
    key = new_key("xml")
    post = pgw.presigner().generate_presigned_post(
        up.bucket, key, Fields={"success_action_status": "201", "Content-Type": "text/plain"},
        Conditions=[{"success_action_status": "201"}, ["starts-with", "$Content-Type", "text/"]],
        ExpiresIn=300)
    r = send(post, b"hello form")
    assert r.status_code == 201, r.text
    doc = ET.fromstring(r.content)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Bucket") == up.bucket
    assert doc.findtext("Key") == key
    assert doc.findtext("ETag").strip('"') == hashlib.md5(b"hello form").hexdigest()
    assert doc.findtext("Location").endswith(f"/{up.bucket}/{key}")
    head = up.client().head_object(Bucket=up.bucket, Key=key)
    assert head["ContentType"] == "text/plain"


def test_filename_substitution_metadata_and_redirect(pgw, up):
    prefix = new_key("sub") + "/"
    post = pgw.presigner().generate_presigned_post(
        up.bucket, prefix + "${filename}",
        Fields={"x-amz-meta-origin": "form", "success_action_redirect": "http://app.example.test/done"},
        Conditions=[{"x-amz-meta-origin": "form"},
                    {"success_action_redirect": "http://app.example.test/done"}],
        ExpiresIn=300)
    r = send(post, b"named", filename="photo.jpg")
    assert r.status_code == 303, r.text
    loc = r.headers["Location"]
    assert loc.startswith("http://app.example.test/done?bucket=")
    assert "photo.jpg" in loc and "etag=" in loc
    head = up.client().head_object(Bucket=up.bucket, Key=prefix + "photo.jpg")
    assert head["Metadata"] == {"origin": "form"}


# --------------------------------------------------------------------------
# refusals: nothing lands

def test_file_over_content_length_range_is_refused_and_nothing_lands(pgw, up):
    key = new_key("large")
    post = pgw.presigner().generate_presigned_post(
        up.bucket, key, Conditions=[["content-length-range", 0, 1024 * 1024]], ExpiresIn=300)
    r = send(post, os.urandom(2 * 1024 * 1024))
    assert r.status_code == 400
    assert code_of(r) == "EntityTooLarge"
    assert not exists(up, key)


def test_file_under_content_length_range_is_refused(pgw, up):
    key = new_key("small")
    post = pgw.presigner().generate_presigned_post(
        up.bucket, key, Conditions=[["content-length-range", 100, 1000]], ExpiresIn=300)
    r = send(post, b"tiny")
    assert (r.status_code, code_of(r)) == (400, "EntityTooSmall")
    assert not exists(up, key)


def test_key_outside_starts_with_is_denied(pgw, up):
    key = new_key("sw")
    post = pgw.presigner().generate_presigned_post(
        up.bucket, key, Conditions=[["starts-with", "$key", "uploads/"]], ExpiresIn=300)
    post["fields"]["key"] = "elsewhere/" + key
    r = send(post, b"x")
    assert r.status_code == 403
    assert code_of(r) == "AccessDenied"
    assert "Invalid according to Policy" in r.text
    assert not exists(up, "elsewhere/" + key)


def test_field_not_in_policy_is_denied(pgw, up):
    key = new_key("extra")
    post = pgw.presigner().generate_presigned_post(up.bucket, key, ExpiresIn=300)
    r = send(post, b"x", extra={"x-amz-meta-sneaky": "1"})
    assert (r.status_code, code_of(r)) == (403, "AccessDenied")
    assert "Extra input fields" in r.text
    assert not exists(up, key)


def test_expired_policy_is_denied(pgw, up):
    key = new_key("expired")
    post = pgw.presigner().generate_presigned_post(up.bucket, key, ExpiresIn=-60)
    r = send(post, b"x")
    assert (r.status_code, code_of(r)) == (403, "AccessDenied")
    assert "expired" in r.text
    assert not exists(up, key)


def test_forged_signature_is_refused(pgw, up):
    key = new_key("forged")
    post = pgw.presigner(ALICE_KEY, "not-alices-secret").generate_presigned_post(
        up.bucket, key, ExpiresIn=300)
    r = send(post, b"x")
    assert r.status_code == 403
    assert code_of(r) == "SignatureDoesNotMatch"
    assert not exists(up, key)


def test_principal_the_policy_does_not_allow_is_denied(pgw, up):
    key = new_key("bob")
    post = pgw.presigner(BOB_KEY, BOB_SECRET).generate_presigned_post(
        up.bucket, key, ExpiresIn=300)
    r = send(post, os.urandom(256 * 1024))
    assert (r.status_code, code_of(r)) == (403, "AccessDenied")
    assert not exists(up, key)


def test_truncated_form_never_lands(pgw, up):
    """The closing boundary never comes: the upstream request is abandoned."""
    key = new_key("truncated")
    post = pgw.presigner().generate_presigned_post(up.bucket, key, ExpiresIn=300)
    boundary = "----s3gateTruncated"
    body = form_body(post["fields"], os.urandom(3 * 1024 * 1024), boundary, close=False)
    status, _, payload = raw_post(pgw, f"/{up.bucket}", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body))})
    assert status >= 400, payload
    assert not exists(up, key)


def test_sigv2_form(pgw, up):
    key = new_key("v2")
    v2 = boto3.session.Session().client(
        "s3", endpoint_url=pgw.endpoint, region_name=REGION,
        aws_access_key_id=ALICE_KEY, aws_secret_access_key=ALICE_SECRET,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    post = v2.generate_presigned_post(up.bucket, key, ExpiresIn=300)
    assert "AWSAccessKeyId" in post["fields"]
    r = send(post, b"v2 body")
    assert r.status_code == 204, r.text
    assert up.client().get_object(Bucket=up.bucket, Key=key)["Body"].read() == b"v2 body"


# --------------------------------------------------------------------------
# browsers: CORS preflight and a form as Chromium sends it

def test_preflight_allowed_and_refused(pgw, up):
    conn = http.client.HTTPConnection("127.0.0.1", pgw.port, timeout=30)
    conn.request("OPTIONS", f"/{up.bucket}", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert "POST" in r.getheader("Access-Control-Allow-Methods")
    assert r.getheader("Access-Control-Max-Age") == "600"
    conn.request("OPTIONS", f"/{up.bucket}", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 403
    assert b"AccessForbidden" in body


def test_browser_shaped_fetch_upload_carries_cors_headers(pgw, up):
    key = new_key("fetch")
    post = pgw.presigner().generate_presigned_post(up.bucket, key, ExpiresIn=300)
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    data = os.urandom(70 * 1024)
    body = form_body(post["fields"], data, boundary, filename="blob")
    status, headers, payload = raw_post(pgw, f"/{up.bucket}", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Origin": ORIGIN, "Referer": ORIGIN + "/", "Sec-Fetch-Mode": "cors",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"})
    assert status == 204, payload
    assert headers.get("access-control-allow-origin") == ORIGIN
    assert "etag" in headers.get("access-control-expose-headers", "").lower()
    assert up.client().get_object(Bucket=up.bucket, Key=key)["Body"].read() == data
    # An error answer carries them too, so the page can read it.
    bad = dict(post["fields"], policy=post["fields"]["policy"][:-4] + "AAAA")
    body = form_body(bad, b"x", boundary)
    status, headers, _ = raw_post(pgw, f"/{up.bucket}", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": ORIGIN})
    assert status in (400, 403)
    assert headers.get("access-control-allow-origin") == ORIGIN


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>s3gate POST</title></head><body>
<form id="form" method="post" enctype="multipart/form-data" action="__ACTION__">
__INPUTS__<input type="file" name="file" id="file">
</form>
<script>
const action = "__ACTION__";
const fetchFields = __FETCH_FIELDS__;
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
async function report(what) {
  await fetch("/report", {method: "POST", body: JSON.stringify(what)});
}
async function run() {
  // 1. fetch with FormData; the custom header makes it need a preflight.
  try {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fetchFields)) fd.append(k, v);
    fd.append("file", new Blob([bytes("__FETCH_DATA__")]), "fetched.bin");
    const r = await fetch(action, {method: "POST", body: fd,
                                   headers: {"X-S3gate-Test": "preflight-me"}});
    await report({fetch: {status: r.status, etag: r.headers.get("ETag")}});
  } catch (e) {
    await report({fetch: {error: String(e)}});
  }
  // 2. the form, its file input filled as a user would, submitted: the
  // gateway redirects the browser back here (success_action_redirect).
  const dt = new DataTransfer();
  dt.items.add(new File([bytes("__FORM_DATA__")], "picked.bin"));
  document.getElementById("file").files = dt.files;
  document.getElementById("form").submit();
}
run();
</script></body></html>
"""


class _PageServer:
    """The page's origin (http://app.example.test, mapped to a local port in
    Chromium): serves the page, records the page's reports and the redirect
    the gateway answers the form with."""

    def __init__(self, page):
        import http.server
        import json
        import threading
        from urllib.parse import parse_qs, urlsplit

        self.reports = {}
        self.done = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, code, body=b"", ctype="text/plain"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlsplit(self.path)
                if url.path == "/":
                    self._answer(200, page.encode(), "text/html; charset=utf-8")
                elif url.path == "/done":
                    outer._record("form", {k: v[0] for k, v in parse_qs(url.query).items()})
                    self._answer(200, b"<p>uploaded</p>", "text/html")
                else:
                    self._answer(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if self.path == "/report":
                    for k, v in json.loads(body).items():
                        outer._record(k, v)
                self._answer(204)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _record(self, what, value):
        self.reports[what] = value
        if {"fetch", "form"} <= self.reports.keys():
            self.done.set()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _chromium_flags(profile):
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--metrics-recording-only", "--mute-audio"]


def _chromium_starts(chromium, tmp_path):
    """Whether Chromium can run here at all (a container may forbid it)."""
    try:
        p = subprocess.run(
            [chromium, *_chromium_flags(tmp_path / "probe"), "--dump-dom",
             "data:text/html,<p>s3gate-probe</p>"],
            capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "chromium --dump-dom did not finish in 30 s"
    if b"s3gate-probe" in p.stdout:
        return True, ""
    return False, p.stderr.decode(errors="replace")[-400:]


def test_chromium_form_and_fetch(pgw, garage, tmp_path):
    """A real browser: headless Chromium loads a page from another origin
    (http://app.example.test), `fetch`es a FormData upload with a custom
    header (so a CORS preflight comes first) and submits an HTML form whose
    file input it filled; both objects land byte-exact."""
    import base64
    import html
    import json
    import time

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`, see .ci/setup)")
    ok, why = _chromium_starts(chromium, tmp_path)
    if not ok:
        pytest.skip(f"Chromium is installed but cannot start here: {why}")

    page_origin = "http://app.example.test"
    fetch_key, form_key = new_key("chromium-fetch"), new_key("chromium-form")
    fetch_data = os.urandom(512 * 1024 + 3)
    form_data = os.urandom(300 * 1024 + 1)
    presigner = pgw.presigner()
    fetch_post = presigner.generate_presigned_post(garage.bucket, fetch_key, ExpiresIn=300)
    form_post = presigner.generate_presigned_post(
        garage.bucket, form_key,
        Fields={"success_action_redirect": page_origin + "/done"},
        Conditions=[{"success_action_redirect": page_origin + "/done"}], ExpiresIn=300)
    action = f"{pgw.endpoint}/{garage.bucket}"
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">\n'
        for k, v in form_post["fields"].items())
    page = (PAGE.replace("__ACTION__", action).replace("__INPUTS__", inputs)
            .replace("__FETCH_FIELDS__", json.dumps(fetch_post["fields"]))
            .replace("__FETCH_DATA__", base64.b64encode(fetch_data).decode())
            .replace("__FORM_DATA__", base64.b64encode(form_data).decode()))
    server = _PageServer(page)
    log_from = pgw.log_path.stat().st_size
    browser_log = tmp_path / "chromium.log"
    net_log = tmp_path / "netlog.json"
    with open(browser_log, "wb") as blog:
        proc = subprocess.Popen(
            [chromium, *_chromium_flags(tmp_path / "profile"),
             f"--host-resolver-rules=MAP app.example.test:80 127.0.0.1:{server.port}",
             f"--log-net-log={net_log}",
             page_origin + "/"],
            stdout=blog, stderr=blog, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not server.done.wait(0.2):
            assert proc.poll() is None, browser_log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, (
                f"reports so far: {server.reports}\n"
                + browser_log.read_text(errors="replace")[-2000:])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.close()

    fetched = server.reports["fetch"]
    assert fetched.get("status") == 204, fetched
    # The ETag is readable by the page: exposed by the bucket's CORS rule.
    assert fetched["etag"].strip('"') == hashlib.md5(fetch_data).hexdigest()
    form = server.reports["form"]
    assert form["key"] == form_key and form["bucket"] == garage.bucket, form
    assert form["etag"].strip('"') == hashlib.md5(form_data).hexdigest()
    direct = garage.client()
    assert direct.get_object(Bucket=garage.bucket, Key=fetch_key)["Body"].read() == fetch_data
    assert direct.get_object(Bucket=garage.bucket, Key=form_key)["Body"].read() == form_data
    # The fetch was preceded by a preflight the gateway answered: the
    # browser's own network log has it, and so has the gateway's.
    net = net_log.read_text(errors="replace")
    assert f"OPTIONS /{garage.bucket} HTTP/1.1" in net
    assert "access-control-request-headers: x-s3gate-test" in net.lower()
    with open(pgw.log_path, "rb") as f:
        f.seek(log_from)
        log = f.read().decode(errors="replace")
    assert any('operation="-"' in line and "status=200" in line
               for line in log.splitlines()), log[-3000:]


def test_readme_cors_example_is_the_one_tested():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for line in CORS_RULE.splitlines():
        assert line.strip() in readme, line
