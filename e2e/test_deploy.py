"""The Kubernetes manifests in deploy/kubernetes pass schema validation, and
the gateway config and policies inside their ConfigMaps pass `s3gate check`
and `s3gate test`: the README's deployment examples are these files."""
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
BIN = ROOT / "target" / "debug" / "s3gate"
MANIFESTS = sorted(K8S.glob("*/*.yaml"))


def test_manifests_pass_schema_validation():
    assert MANIFESTS, "no manifests found"
    tool = Path(sys.executable).parent / "kubernetes-validate"
    r = subprocess.run([str(tool), "--strict", *map(str, MANIFESTS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def configmaps():
    for m in MANIFESTS:
        for doc in yaml.safe_load_all(m.read_text()):
            if doc and doc.get("kind") == "ConfigMap":
                yield m, doc


def test_embedded_gateway_configs_and_policies_check(tmp_path):
    checked = 0
    for manifest, cm in configmaps():
        data = cm["data"]
        if "gateway.yaml" not in data:
            continue
        root = tmp_path / manifest.parent.name
        (root / "policies").mkdir(parents=True)
        (root / "keys").mkdir()
        for name in ["etl", "janitor", "upstream-access-key-id", "upstream-secret-access-key"]:
            (root / "keys" / name).write_text("test-secret\n")
        # The policies of this deployment: every other key of the ConfigMaps in its folder.
        for other_manifest, other in configmaps():
            if other_manifest.parent == manifest.parent:
                for key, text in other["data"].items():
                    if key != "gateway.yaml":
                        (root / "policies" / key).write_text(text)
        config = data["gateway.yaml"].replace("/etc/s3gate/keys", str(root / "keys")).replace("/etc/s3gate/policies", str(root / "policies")).replace("/var/log/s3gate", str(root / "log"))
        (root / "gateway.yaml").write_text(config)
        env = dict(os.environ, APP_GATEWAY_SECRET="x", UPSTREAM_ACCESS_KEY_ID="x", UPSTREAM_SECRET_ACCESS_KEY="x")
        r = subprocess.run([str(BIN), "check", "--config", str(root / "gateway.yaml")], capture_output=True, text=True, env=env)
        assert r.returncode == 0, f"{manifest}: {r.stdout}{r.stderr}"
        r = subprocess.run([str(BIN), "test", str(root / "policies")], capture_output=True, text=True)
        # Every `Tests:` case of the policy files ran (and there are some).
        expected = sum(len((yaml.safe_load(p.read_text()) or {}).get("Tests") or [])
                       for p in (root / "policies").iterdir())
        summary = re.search(r"^(\d+) passed, (\d+) failed$", r.stdout, re.M)
        assert expected > 0, f"{manifest}: its policies carry no Tests:"
        assert r.returncode == 0 and summary and (int(summary[1]), summary[2]) == (expected, "0"), \
            f"{manifest}: expected {expected} passed: {r.stdout}{r.stderr}"
        checked += 1
    assert checked == 2, "both the egress and the sidecar configs were checked"
