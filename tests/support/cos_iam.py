"""Stand-ins for IBM Cloud IAM and an IBM COS endpoint that only takes IAM
bearer tokens, on loopback, for tests of `credentials: { ibm_iam }`.

* IAM (`POST /identity/token`): exchanges the one API key it knows
  (form `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=...`) for
  a fresh token that lives `--expires-in` seconds, answering IAM's JSON
  (`access_token`, `expires_in`, `expiration`, ...). A wrong key or grant
  type gets IAM's 400 error. `GET /_stats` tells the exchanges and refusals.
* COS: accepts a request only with `Authorization: Bearer <token>` of a
  token IAM issued and that has not expired (else 403 AccessDenied, as COS
  answers), then re-signs it with SigV4 (botocore) for Garage and relays
  the answer, so the full S3 API (multipart included) works behind it.
  `GET /_seen` lists what it accepted: method, path, which token (by issue
  number) and the `ibm-service-instance-id` header.

Prints one JSON line `{"iam": url, "cos": url}` and serves until its
standard input closes.

python3 cos_iam.py --api-key KEY --expires-in 4 \\
    --garage http://127.0.0.1:3900 --garage-key GK... --garage-secret ...
"""
import argparse
import http.client
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.parse
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

GRANT = "urn:ibm:params:oauth:grant-type:apikey"
LOCK = threading.Lock()
TOKENS = {}  # token -> (issue number, monotonic expiry)
STATS = {"exchanges": 0, "refused": 0, "issued_at": []}  # issue times: monotonic seconds
SEEN = []
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}


def read_body(h):
    if "chunked" in (h.headers.get("transfer-encoding") or "").lower():
        out = b""
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += h.rfile.read(size)
            h.rfile.readline()
    n = int(h.headers.get("content-length") or 0)
    return h.rfile.read(n) if n else b""


def answer(h, status, body=b"", ctype="application/json", headers=()):
    h.send_response(status)
    for k, v in headers:
        h.send_header(k, v)
    if body or status not in (204, 304):
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(body)))
    h.end_headers()
    if body and h.command != "HEAD":
        h.wfile.write(body)


class Iam(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api_key = ""
    expires_in = 3600

    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
            body = json.dumps(dict(STATS, tokens=len(TOKENS))).encode()
        answer(self, 200, body)

    def do_POST(self):
        form = urllib.parse.parse_qs(read_body(self).decode())
        if (self.headers.get("content-type") != "application/x-www-form-urlencoded"
                or form.get("grant_type") != [GRANT] or form.get("apikey") != [self.api_key]):
            with LOCK:
                STATS["refused"] += 1
            err = {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                   "context": {"requestId": secrets.token_hex(8)}}
            return answer(self, 400, json.dumps(err).encode())
        token = "eyJ" + secrets.token_urlsafe(24)
        with LOCK:
            STATS["exchanges"] += 1
            STATS["issued_at"].append(time.monotonic())
            TOKENS[token] = (STATS["exchanges"], time.monotonic() + self.expires_in)
        body = {"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
                "expires_in": self.expires_in, "expiration": int(time.time()) + self.expires_in,
                "scope": "ibm openid"}
        answer(self, 200, json.dumps(body).encode())


class Cos(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    garage = ""
    creds = None

    def log_message(self, *args):
        pass

    def handle_any(self):
        if self.path == "/_seen":
            with LOCK:
                return answer(self, 200, json.dumps(SEEN).encode())
        body = read_body(self)
        auth = self.headers.get("authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        with LOCK:
            issued = TOKENS.get(token) if token else None
        if issued is None or issued[1] <= time.monotonic():
            why = "expired" if issued else "not an IAM token"
            xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
                   f"<Message>Access Denied ({why})</Message></Error>").encode()
            return answer(self, 403, xml, "application/xml")
        with LOCK:
            SEEN.append({"method": self.command, "path": self.path, "token": issued[0],
                         "instance": self.headers.get("ibm-service-instance-id")})
        self.forward(body)

    def forward(self, body):
        url = self.garage + self.path
        skip = HOP | {"authorization", "host", "x-amz-date", "x-amz-content-sha256",
                      "ibm-service-instance-id", "content-length", "expect"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        req = AWSRequest(method=self.command, url=url, headers=headers, data=body)
        S3SigV4Auth(self.creds, "s3", "garage").add_auth(req)
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            sent = dict(req.headers.items())
            sent["content-length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=sent)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api-key", required=True)
    p.add_argument("--expires-in", type=int, default=3600)
    p.add_argument("--garage", required=True)
    p.add_argument("--garage-key", required=True)
    p.add_argument("--garage-secret", required=True)
    a = p.parse_args()
    Iam.api_key, Iam.expires_in = a.api_key, a.expires_in
    Cos.garage, Cos.creds = a.garage.rstrip("/"), Credentials(a.garage_key, a.garage_secret)
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Iam, Cos)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    iam, cos = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    print(json.dumps({"iam": iam, "cos": cos}), flush=True)
    sys.stdin.read()  # until the test closes the pipe


if __name__ == "__main__":
    main()
