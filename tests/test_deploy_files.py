"""The generated deployment files (deploy/k8s/*.yaml, deploy/compose.yaml): the checked-in files are exactly what
`mash deploy render` makes from the topic catalogue and the ACL declarations, and the Strimzi resources validate
against Strimzi's own CRD schemas (tests/fixtures/strimzi, from Strimzi's release manifests: see its README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from broker.acls import PRINCIPALS, Pattern, ResourceType, grants
from broker.manifests import rendered, strimzi
from broker.settings import Settings
from broker.topics import catalogue
from consumers.settings import WebSettings

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "tests" / "fixtures" / "strimzi"


def _schemas() -> dict[str, dict[str, Any]]:
    """Kind -> the openAPIV3Schema of its served `v1` version."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"]]
        out[crd["spec"]["names"]["kind"]] = v1["schema"]["openAPIV3Schema"]
    return out


SCHEMAS = _schemas()
RESOURCES = [doc for docs in strimzi("mash").values() for doc in docs]


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMAS[doc["kind"]])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_checked_in_files_are_a_fresh_render() -> None:
    """deploy/k8s/*.yaml, deploy/compose.yaml and deploy/prometheus-compose.yml equal `mash deploy render`'s
    output: they cannot drift from the catalogue or the ACLs."""
    for name, text in rendered("mash").items():
        assert (ROOT / "deploy" / name).read_text() == text, f"deploy/{name} is stale: run `mash deploy render`"


@pytest.mark.parametrize("doc", RESOURCES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_strimzi_resource_validates_against_its_crd(doc: dict[str, Any]) -> None:
    """Each Kafka, KafkaNodePool, KafkaTopic and KafkaUser is valid under Strimzi's v1 CRD schema."""
    assert doc["apiVersion"] == "kafka.strimzi.io/v1"
    assert _errors(doc) == []


def test_the_crd_check_refuses_what_strimzi_refuses() -> None:
    """The schema check is not vacuous: a grant with Kafka's pattern name ("prefixed") instead of Strimzi's
    ("prefix"), or an unknown operation, is refused."""
    user = next(d for d in RESOURCES if d["kind"] == "KafkaUser")
    bad = yaml.safe_load(yaml.safe_dump(user))
    bad["spec"]["authorization"]["acls"][0]["resource"]["patternType"] = "prefixed"
    bad["spec"]["authorization"]["acls"][0]["operations"] = ["Teleport"]
    assert len(_errors(bad)) >= 2


def test_topics_and_users_match_the_catalogue_and_the_grants() -> None:
    """A KafkaTopic per catalogue topic (its partitions, replication 3, min.insync.replicas 2) and a KafkaUser per
    principal carrying exactly its grants; the nodes pools give three controllers and three brokers."""
    cat = catalogue("mash")
    topics = {d["spec"]["topicName"]: d["spec"] for d in RESOURCES if d["kind"] == "KafkaTopic"}
    assert set(topics) == {cat.name(s.name) for s in cat.specs}
    for s in cat.specs:
        spec = topics[cat.name(s.name)]
        assert spec["partitions"] == s.partitions and spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == "2"
    users = {d["metadata"]["name"]: d["spec"]["authorization"]["acls"] for d in RESOURCES if d["kind"] == "KafkaUser"}
    assert set(users) == {p.name for p in PRINCIPALS}
    for g in grants("mash"):
        want = {"type": g.resource_type.value if g.resource_type is not ResourceType.TRANSACTIONAL_ID
                else "transactionalId"}
        if g.resource_type is not ResourceType.CLUSTER:
            want |= {"name": g.name, "patternType": "prefix" if g.pattern is Pattern.PREFIXED else "literal"}
        assert any(a["resource"] == want and a["operations"] == list(g.operations) for a in users[g.principal]), g
    assert sum(len(a) for a in users.values()) == len(grants("mash"))
    audit = catalogue("mash").name("audit")
    assert not any("Delete" in a["operations"] for acls in users.values() for a in acls
                   if a["resource"].get("name") == audit)
    pools = {d["metadata"]["name"]: d["spec"] for d in RESOURCES if d["kind"] == "KafkaNodePool"}
    assert {n: (p["replicas"], p["roles"]) for n, p in pools.items()} == {
        "controller": (3, ["controller"]), "broker": (3, ["broker"])}


def test_the_compose_file_hangs_together() -> None:
    """Every compose service has an image or a build, depends only on services that exist, uses only declared
    volumes, and sets only MASH_ variables that the settings objects read."""
    doc = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = doc["services"]
    assert {"kafka", "registry", "setup", "worker", "web", "postgres", "prometheus"} <= set(services)
    known = {f"MASH_{n.upper()}" for n in Settings.model_fields}
    known |= {f"MASH_WEB_{n.upper()}" for n in WebSettings.model_fields}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), name
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith(".") or source in doc["volumes"], (name, volume)
        for var in svc.get("environment", {}):
            assert not var.startswith("MASH_") or var in known, (name, var)
    assert (ROOT / "deploy" / "Dockerfile").exists()
