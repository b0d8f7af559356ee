"""The ACL declarations (broker.acls): least privilege as DESIGN.md's guardrails state it."""

from __future__ import annotations

import pytest

from broker.acls import (
    ADMIN,
    AGENCY_PRINCIPALS,
    PRINCIPALS,
    SERVICE_ROUTES,
    Grant,
    Pattern,
    ResourceType,
    allows,
    grants,
    principal,
)
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue

PREFIX = "mash"
G = grants(PREFIX)
CAT = catalogue(PREFIX)
TOPICS = [CAT.name(s.name) for s in CAT.specs]
T = ResourceType.TOPIC


def test_every_grant_names_a_declared_principal() -> None:
    """No grant is given to a principal missing from PRINCIPALS (or to the admin super user)."""
    names = {p.name for p in PRINCIPALS}
    assert {g.principal for g in G} <= names
    assert ADMIN.name not in names
    assert principal("operations").kafka == "User:operations"


def test_only_operations_read_dead_letters() -> None:
    """No principal but operations may read the dead-letter topic (raw bytes may hold personal data)."""
    readers = {p.name for p in PRINCIPALS if allows(G, p.name, T, CAT.name("deadletter"), "Read")}
    assert readers == {"operations"}


@pytest.mark.parametrize("agency", sorted(AGENCY_PRINCIPALS, key=lambda a: a.value))
def test_each_agency_writes_only_its_own_intake(agency: object) -> None:
    """An agency principal may write exactly one topic, its own intake topic, and read only rejections."""
    who = AGENCY_PRINCIPALS[agency]  # type: ignore[index]
    assert [t for t in TOPICS if allows(G, who, T, t, "Write")] == [CAT.name(INTAKE_TOPICS[agency])]  # type: ignore[index]
    assert [t for t in TOPICS if allows(G, who, T, t, "Read")] == [CAT.name("feedback.rejections")]


def test_nobody_may_delete_or_alter_audit_records() -> None:
    """No principal holds Delete, Alter, AlterConfigs or All on the audit topic (only retention removes records)."""
    for p in PRINCIPALS:
        for op in ("Delete", "Alter", "AlterConfigs", "All"):
            assert not allows(G, p.name, T, CAT.name("audit"), op), (p.name, op)
    assert not any("Delete" in g.operations or "All" in g.operations for g in G)


def test_consumer_services_read_only_their_routes_and_write_only_acknowledgements() -> None:
    """Each consumer service reads its own route topics (plus acknowledgements) and writes acknowledgements only."""
    acks = CAT.name("feedback.acknowledgements")
    for who, routes in SERVICE_ROUTES.items():
        assert {t for t in TOPICS if allows(G, who, T, t, "Read")} == {*(CAT.name(r) for r in routes), acks}, who
        assert [t for t in TOPICS if allows(G, who, T, t, "Write")] == [acks], who
    assert not allows(G, "svc-school-feed", T, CAT.name(ROUTE_TOPICS[next(iter(ROUTE_TOPICS))]), "Read")


def test_worker_reads_intake_and_writes_outputs() -> None:
    """The worker reads every intake topic and writes routes, audit, dead letters and rejections, not intake."""
    w = "mash-worker"
    for short in INTAKE_TOPICS.values():
        assert allows(G, w, T, CAT.name(short), "Read")
        assert not allows(G, w, T, CAT.name(short), "Write")
    for short in (*ROUTE_TOPICS.values(), "audit", "deadletter", "feedback.rejections", "sla.events"):
        assert allows(G, w, T, CAT.name(short), "Write"), short
    assert not allows(G, w, T, CAT.name("deadletter"), "Read")
    # faust's own topics and group
    assert allows(G, w, T, "mash-worker-__assignor-__leader", "Create")
    assert allows(G, w, T, "mash-worker-seen-changelog", "Write")
    assert allows(G, w, ResourceType.GROUP, "mash-worker", "Read")


def test_grants_follow_the_prefix() -> None:
    """Every topic and group name of a catalogue grant starts with its prefix (the registry's own topics aside)."""
    for g in grants("other"):
        if g.principal == "registry" or g.resource_type is ResourceType.CLUSTER:
            continue
        assert g.name.startswith("other"), g


def test_allows_models_prefix_and_implication() -> None:
    """The evaluator: prefixed names match by prefix, literal ones exactly; Read implies Describe, not Write."""
    gs = (Grant("a", T, "x.", Pattern.PREFIXED, ("Read",)), Grant("b", T, "x", Pattern.LITERAL, ("Write",)))
    assert allows(gs, "a", T, "x.y", "Describe")
    assert not allows(gs, "a", T, "x.y", "Write")
    assert not allows(gs, "b", T, "x.y", "Write")
    assert allows(gs, "b", T, "x", "Write")
    assert not allows(gs, "c", T, "x", "Write")


def test_only_the_worker_writes_the_topics_it_decodes_as_trusted() -> None:
    """internal.accepted and the route topics (decoded without a second text-rule pass, schemas.models.TRUSTED)
    are writable by the worker's identity alone."""
    from broker.acls import PRINCIPALS, ResourceType, allows, grants
    from broker.topics import ROUTE_TOPICS, catalogue

    cat, declared = catalogue("mash"), grants("mash")
    for short in ("internal.accepted", *ROUTE_TOPICS.values()):
        writers = {p.name for p in PRINCIPALS if allows(declared, p.name, ResourceType.TOPIC, cat.name(short), "Write")}
        assert writers == {"mash-worker"}, (short, writers)
