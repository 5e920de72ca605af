#!/usr/bin/env bash
# Start a local S3 server with s3gate in front of it, and show the gateway
# at work with the AWS CLI: a multipart upload, an abort, and a request with
# a wrong key being refused. Then keep serving until Ctrl-C.
#
#   deploy/local-demo.sh            # S3 server: moto (ready in a minute)
#   deploy/local-demo.sh --garage   # S3 server: Garage (checks signatures; first build ~12 min)
#   add --exit to stop after the demo
set -euo pipefail
cd "$(dirname "$0")/.."
stay=1 server=moto
for a in "$@"; do
  case "$a" in
    --exit) stay=0 ;;
    --garage) server=garage ;;
    *) echo "usage: $0 [--garage] [--exit]" >&2; exit 2 ;;
  esac
done

if [ "$server" = garage ]; then bash .ci/setup; else bash .ci/setup --no-garage; fi
# shellcheck disable=SC1091
source "${S3GATE_CACHE:-$HOME/.cache/s3gate}/env.sh"
say() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { until python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do sleep 0.1; done; }

if [ -n "${S3GATE_BIN:-}" ]; then
  bin="$S3GATE_BIN"  # a binary built already (the test suite uses this)
else
  say "building s3gate (release)"
  cargo build --release --quiet
  bin="$PWD/target/release/s3gate"
fi

work="$(mktemp -d /tmp/s3gate-demo.XXXXXX)"
cleanup() { exec 3>&- 4>&- 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
mkfifo "$work/s3.in" "$work/gw.in"

if [ "$server" = garage ]; then
  say "starting Garage (a single-node S3 server) on loopback"
  python3 tests/support/garage.py "$work/garage" --bucket demo <"$work/s3.in" >"$work/garage.json" &
  exec 3>"$work/s3.in"  # the S3 server runs while this stays open
  until [ -s "$work/garage.json" ]; do sleep 0.1; done
  read -r endpoint ukey usecret uregion < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["endpoint"], d["access_key_id"], d["secret_access_key"], d["region"])' "$work/garage.json")
else
  say "starting moto (an S3 server) on loopback"
  mport=$(free_port)
  python3 tests/support/tether.py moto_server -H 127.0.0.1 -p "$mport" <"$work/s3.in" >"$work/moto.log" 2>&1 &
  exec 3>"$work/s3.in"
  wait_port "$mport"
  endpoint="http://127.0.0.1:$mport" ukey=moto-key usecret=moto-secret uregion=us-east-1
  AWS_ACCESS_KEY_ID=$ukey AWS_SECRET_ACCESS_KEY=$usecret AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "$endpoint" s3api create-bucket --bucket demo >/dev/null
fi
echo "S3 server: $endpoint (bucket: demo)"

port=$(free_port)
cat >"$work/gateway.yaml" <<YAML
listen:
  - address: 127.0.0.1:$port
region: us-east-1
hostnames: [localhost]
principals:
  - name: demo
    access_key_id: AKIADEMO000000000001
    secret_access_key: { env: DEMO_SECRET }
upstreams:
  local:
    kind: s3-compatible
    endpoint: $endpoint
    region: $uregion
    addressing: path
    credentials:
      access_key_id: $ukey
      secret_access_key: { env: UPSTREAM_SECRET }
buckets:
  demo:
    upstream: local
YAML
export DEMO_SECRET=demo-secret-0123456789 UPSTREAM_SECRET="$usecret"
say "checking the config: s3gate check --config $work/gateway.yaml"
"$bin" check --config "$work/gateway.yaml"
say "starting s3gate on http://127.0.0.1:$port"
python3 tests/support/tether.py "$bin" serve --config "$work/gateway.yaml" <"$work/gw.in" 2>"$work/gateway.log" &
exec 4>"$work/gw.in"
wait_port "$port"

# The client only knows the gateway's key; the upstream's key stays with the gateway.
export AWS_ACCESS_KEY_ID=AKIADEMO000000000001 AWS_SECRET_ACCESS_KEY=$DEMO_SECRET AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
s3api() { aws --endpoint-url "http://127.0.0.1:$port" s3api "$@"; }

say "multipart upload through the gateway"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/part1"
head -c 1234 /dev/urandom >"$work/part2"
upload_id=$(s3api create-multipart-upload --bucket demo --key demo/big.bin --query UploadId --output text)
echo "UploadId: $upload_id"
e1=$(s3api upload-part --bucket demo --key demo/big.bin --upload-id "$upload_id" --part-number 1 --body "$work/part1" --query ETag --output text)
e2=$(s3api upload-part --bucket demo --key demo/big.bin --upload-id "$upload_id" --part-number 2 --body "$work/part2" --query ETag --output text)
s3api list-parts --bucket demo --key demo/big.bin --upload-id "$upload_id" --query 'Parts[].[PartNumber,Size]' --output text
s3api complete-multipart-upload --bucket demo --key demo/big.bin --upload-id "$upload_id" \
  --multipart-upload "{\"Parts\":[{\"PartNumber\":1,\"ETag\":$e1},{\"PartNumber\":2,\"ETag\":$e2}]}" --query Key --output text
s3api head-object --bucket demo --key demo/big.bin --query ContentLength --output text

say "abort: create an upload, add a part, abort it"
abort_id=$(s3api create-multipart-upload --bucket demo --key demo/aborted.bin --query UploadId --output text)
s3api upload-part --bucket demo --key demo/aborted.bin --upload-id "$abort_id" --part-number 1 --body "$work/part2" --query ETag --output text
s3api abort-multipart-upload --bucket demo --key demo/aborted.bin --upload-id "$abort_id" && echo "aborted $abort_id"
echo "uploads left: $(s3api list-multipart-uploads --bucket demo --query 'length(Uploads || `[]`)' --output text)"

say "a client with a wrong secret is refused by the gateway"
if AWS_SECRET_ACCESS_KEY=wrong aws --endpoint-url "http://127.0.0.1:$port" s3api list-objects-v2 --bucket demo 2>"$work/denied.txt"; then
  echo "unexpected: request with a wrong secret succeeded"; exit 1
fi
cat "$work/denied.txt"

say "gateway log (one line per request)"
tail -n 8 "$work/gateway.log"

if [ "$stay" = 1 ]; then
  say "s3gate is serving on http://127.0.0.1:$port — try:"
  echo "  AWS_ACCESS_KEY_ID=AKIADEMO000000000001 AWS_SECRET_ACCESS_KEY=$DEMO_SECRET aws --endpoint-url http://127.0.0.1:$port s3 ls s3://demo --recursive"
  echo "Press Ctrl-C to stop."
  wait
fi
say "demo finished"
