"""The topic catalogue: durability per profile, retention and clean-up per kind, routes and prefixed names."""

from __future__ import annotations

import pytest

from broker.topics import DAY_MS, INTAKE_TOPICS, ROUTE_TOPICS, Catalogue, TopicKind, TopicSpec, catalogue
from schemas import models as m

CAT = catalogue("mash")
YEAR_MS = 365 * DAY_MS


def _of(kind: TopicKind) -> list[TopicSpec]:
    specs = [s for s in CAT.specs if s.kind is kind]
    assert specs, f"no {kind.value} topic"
    return specs


def test_topic_names_are_unique() -> None:
    """No short name appears twice in the catalogue."""
    names = [s.name for s in CAT.specs]
    assert len(names) == len(set(names))


def test_production_profile_is_durable() -> None:
    """Production: replication factor 3 and min.insync.replicas 2 on every topic."""
    assert Catalogue.replication("production") == 3
    for spec in CAT.specs:
        assert spec.config("production")["min.insync.replicas"] == "2", spec.name


def test_local_profile_is_single_broker() -> None:
    """Local: replication factor 1 and min.insync.replicas 1 on every topic (one broker)."""
    assert Catalogue.replication("local") == 1
    for spec in CAT.specs:
        assert spec.config("local")["min.insync.replicas"] == "1", spec.name


@pytest.mark.parametrize("profile", ["local", "production"])
def test_audit_is_append_only_for_six_years(profile: str) -> None:
    """The audit topic is delete-only (never compacted) and kept at least 6 years."""
    (audit,) = _of(TopicKind.AUDIT)
    cfg = audit.config(profile)
    assert cfg["cleanup.policy"] == "delete"
    assert "compact" not in cfg["cleanup.policy"]
    assert int(cfg["retention.ms"]) >= 6 * YEAR_MS
    assert m.AuditRecord in audit.records


def test_dead_letter_retention_is_bounded() -> None:
    """The dead-letter topic (raw bytes, maybe personal data) is deleted within 30 days, never kept forever."""
    for spec in _of(TopicKind.DEAD_LETTER):
        cfg = spec.config("production")
        assert cfg["cleanup.policy"] == "delete"
        assert 0 < int(cfg["retention.ms"]) <= 30 * DAY_MS


@pytest.mark.parametrize("short", ["reference.schools"])
def test_state_topics_are_compacted(short: str) -> None:
    """The school reference topic is compacted (latest value per key)."""
    spec = CAT.spec(short)
    assert spec.kind is TopicKind.STATE
    assert spec.config("production")["cleanup.policy"] == "compact"


def test_intake_topics_use_log_append_time() -> None:
    """Every agency intake topic stamps receipt with LogAppendTime and carries that agency's bodies."""
    assert {s.name for s in _of(TopicKind.INTAKE)} == set(INTAKE_TOPICS.values())
    for agency, short in INTAKE_TOPICS.items():
        spec = CAT.spec(short)
        assert spec.config("local")["message.timestamp.type"] == "LogAppendTime"
        assert spec.records == m.AGENCY_BODIES[agency]


def test_every_output_record_is_on_a_route_topic() -> None:
    """Each record type in OUTPUTS is carried by at least one route.* topic, and each Route has its topic."""
    routed = {r for s in CAT.specs if s.name.startswith("route.") for r in s.records}
    assert set(m.OUTPUTS) <= routed
    for route, short in ROUTE_TOPICS.items():
        assert CAT.spec(short).kind is TopicKind.OUTPUT, route
    assert set(ROUTE_TOPICS) == set(m.Route) - {m.Route.UNKNOWN}


def test_names_carry_the_prefix() -> None:
    """Full names are `<prefix>.<short>`, for any prefix, including the intake lookup."""
    other = catalogue("test-7f3a")
    for spec in CAT.specs:
        assert CAT.name(spec.name) == f"mash.{spec.name}"
        assert other.name(spec.name) == f"test-7f3a.{spec.name}"
    assert CAT.intake(m.AgencyType.YOUTH_JUSTICE) == "mash.intake.youth-justice"
    assert other.intake(m.AgencyType.POLICE) == "test-7f3a.intake.police"
    with pytest.raises(KeyError):
        CAT.spec("no.such.topic")


def test_records_by_topic_cover_every_carrying_topic_and_no_catalogue_topic() -> None:
    """records() maps each full topic name to its record types; schemas live in the registry, not on a topic."""
    by_topic = catalogue("p").records()
    assert by_topic["p.intake.police"] == m.AGENCY_BODIES[m.AgencyType.POLICE]
    assert by_topic["p.route.encompass"] == (m.EncompassNotice, m.Recall)
    assert "p.reference.schools" not in by_topic
    assert all(s.name != "schemas" for s in CAT.specs)


def test_the_cluster_profile_replicates_as_production_does() -> None:
    """The `cluster` profile (deploy/cluster.sh) gives every topic replication 3 and min.insync.replicas 2, as
    `production` does, and `local` keeps 1 and 1."""
    from broker.topics import REPLICATED_PROFILES, catalogue

    cat = catalogue("t")
    assert {"production", "cluster"} == REPLICATED_PROFILES
    for spec in cat.specs:
        assert spec.config("cluster")["min.insync.replicas"] == spec.config("production")["min.insync.replicas"] == "2"
        assert spec.config("local")["min.insync.replicas"] == "1"
    assert cat.replication("cluster") == cat.replication("production") == 3 and cat.replication("local") == 1
