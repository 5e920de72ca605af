#!/usr/bin/env python3
"""Run a single-node Garage on loopback for tests and demos.

Starts Garage (sqlite metadata) in DIR on free ports, lays out the node,
imports an access key and creates buckets, then prints ONE line of JSON:

  {"endpoint": "http://127.0.0.1:PORT", "region": "garage",
   "access_key_id": "...", "secret_access_key": "...", "pid": N}

and keeps Garage running until its standard input closes (or SIGTERM),
so a test harness that dies never leaves Garage behind.

Usage: garage.py DIR [--bucket NAME ...] [--garage PATH]
"""
import argparse, json, os, secrets, shutil, signal, socket, subprocess, sys, time

KEY_ID = "GK" + "5a3e" * 6          # fixed, so demos can print it
SECRET = "7e57" * 16


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_garage(explicit):
    for cand in [explicit, os.environ.get("GARAGE_BIN"), shutil.which("garage"),
                 os.path.expanduser("~/.cache/s3gate/garage-2.5.0/bin/garage")]:
        if cand and os.path.exists(cand):
            return cand
    sys.exit("garage binary not found: run .ci/setup first")


def wait_until(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)  # polling interval of a readiness probe, not a synchronisation sleep
    sys.exit(f"garage: timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bucket", action="append", default=[])
    ap.add_argument("--garage")
    a = ap.parse_args()
    garage = find_garage(a.garage)
    os.makedirs(a.dir, exist_ok=True)
    s3, rpc, admin = free_port(), free_port(), free_port()
    conf = os.path.join(a.dir, "garage.toml")
    with open(conf, "w") as f:
        f.write(f"""metadata_dir = "{a.dir}/meta"
data_dir = "{a.dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secrets.token_hex(32)}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{secrets.token_hex(16)}"
""")
    log = open(os.path.join(a.dir, "garage.log"), "ab")
    env = dict(os.environ, RUST_LOG=os.environ.get("GARAGE_LOG", "garage=warn"))
    proc = subprocess.Popen([garage, "-c", conf, "server"], stdout=log, stderr=log, env=env)

    def stop(*_):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)

    def cli(*args, check=True):
        r = subprocess.run([garage, "-c", conf, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            proc.kill()
            sys.exit(f"garage {' '.join(args)} failed: {r.stderr}")
        return r

    def rpc_up():
        return proc.poll() is None and cli("status", check=False).returncode == 0

    wait_until(rpc_up, "the RPC port")
    node = cli("node", "id", "-q").stdout.strip().split("@")[0]
    cli("layout", "assign", "-z", "dc1", "-c", "10G", node)
    cli("layout", "apply", "--version", "1")
    cli("key", "import", "--yes", "-n", "tests", KEY_ID, SECRET)
    for b in a.bucket:
        cli("bucket", "create", b)
        cli("bucket", "allow", "--read", "--write", "--owner", b, "--key", "tests")

    def s3_up():
        try:
            with socket.create_connection(("127.0.0.1", s3), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(s3_up, "the S3 port")
    print(json.dumps({"endpoint": f"http://127.0.0.1:{s3}", "region": "garage", "access_key_id": KEY_ID,
                      "secret_access_key": SECRET, "pid": proc.pid, "config": conf, "garage": garage}), flush=True)
    # Run until whoever started us goes away.
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    stop()


if __name__ == "__main__":
    main()
