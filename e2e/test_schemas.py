"""The JSON Schemas in schemas/ against a real validator (check-jsonschema):
they are valid draft 2020-12 schemas, equal to `s3gate schema …`, every
shipped config and policy file (docs/, policies/, the ConfigMaps of
deploy/kubernetes) passes them, the shipped files name them in a
`# yaml-language-server: $schema=…` line, and typos are refused."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import check_jsonschema  # noqa: F401  (run as `python -m check_jsonschema`)
except ImportError:  # pragma: no cover
    pytest.fail("check-jsonschema is missing from this venv: run .ci/setup "
                "(it installs e2e/requirements.txt) and source ~/.cache/s3gate/env.sh",
                pytrace=False)

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "debug" / "s3gate"
SCHEMAS = ROOT / "schemas"
CONFIG_SCHEMA = SCHEMAS / "gateway.schema.json"
POLICY_SCHEMA = SCHEMAS / "policy.schema.json"

SHIPPED_CONFIGS = [ROOT / "docs" / "gateway.example.yaml"]
SHIPPED_POLICIES = [ROOT / "docs" / "policy.example.yaml", *sorted((ROOT / "policies").glob("*/*.yaml"))]
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)


def validate(schema: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), *map(str, files)],
        capture_output=True, text=True)


def embedded(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """The gateway configs and policies inside the deploy manifests' ConfigMaps."""
    configs, policies = [], []
    for manifest in sorted((ROOT / "deploy" / "kubernetes").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if not doc or doc.get("kind") != "ConfigMap":
                continue
            for key, text in doc["data"].items():
                out = tmp_path / f"{manifest.parent.name}-{key}"
                out.write_text(text)
                (configs if key == "gateway.yaml" else policies).append(out)
    return configs, policies


def test_schemas_are_valid_and_committed_as_printed():
    r = subprocess.run([sys.executable, "-m", "check_jsonschema", "--check-metaschema",
                        str(CONFIG_SCHEMA), str(POLICY_SCHEMA)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for which, path in [("config", CONFIG_SCHEMA), ("policy", POLICY_SCHEMA)]:
        out = subprocess.run([str(BIN), "schema", which], capture_output=True, text=True, check=True).stdout
        assert out == path.read_text(), f"{path} differs from `s3gate schema {which}`"


def test_shipped_files_pass_their_schemas(tmp_path):
    configs, policies = embedded(tmp_path)
    assert len(configs) == 2 and len(policies) >= 2, (configs, policies)
    for schema, files in [(CONFIG_SCHEMA, SHIPPED_CONFIGS + configs),
                          (POLICY_SCHEMA, SHIPPED_POLICIES + policies)]:
        r = validate(schema, *files)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", SHIPPED_CONFIGS + SHIPPED_POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_name_their_schema(path):
    m = MODELINE.search(path.read_text())
    assert m, f"{path} has no yaml-language-server line"
    target = (path.parent / m.group(1)).resolve()
    want = CONFIG_SCHEMA if path in SHIPPED_CONFIGS else POLICY_SCHEMA
    assert target == want, f"{path} names {target}"


TYPOS = [
    # (schema, file text, what the validator must name)
    (POLICY_SCHEMA, """Version: "2012-10-17"
Statement:
  - Sid: Typo
    Efect: Allow
    Action: s3:GetObject
    Resource: "*"
""", "Efect"),
    (POLICY_SCHEMA, """Version: "2012-10-17"
Statement:
  - Effect: Allow
    Action: s3:GetObject
    Resource: arn:aws:s3:analytics-raw/*
""", "arn:aws:s3:analytics-raw/*"),
    (POLICY_SCHEMA, """Version: "2012-10-17"
Statement:
  - Effect: Deny
    Action: s3:GetObject
    Condition:
      StringEqualz: { s3gate:RequestPayer: requester }
""", "StringEqualz"),
    (CONFIG_SCHEMA, """listen: [{ address: 127.0.0.1:9000 }]
regoin: us-east-1
""", "regoin"),
    (CONFIG_SCHEMA, """listen: [{ address: 127.0.0.1:9000 }]
region: us-east-1
buckets:
  media: { upstream: lab, expected_bucket_owner: enforced }
""", "enforced"),
]


@pytest.mark.parametrize("schema,text,word", TYPOS, ids=[t[2] for t in TYPOS])
def test_typos_are_refused(tmp_path, schema, text, word):
    f = tmp_path / "typo.yaml"
    f.write_text(text)
    r = validate(schema, f)
    assert r.returncode != 0, r.stdout
    assert word in r.stdout + r.stderr, r.stdout + r.stderr
