"""Fault drills: make a named stage fail for chosen notifications, to prove every record still ends in one
recorded outcome. Off unless `MASH_FAULT_PLAN` is set (tests and operator drills only).

A plan is JSON: a list of {"stage": "<stage>", "kind": "transient" | "fatal", "times": N, "match": "<id>"}.
Each stage boundary of the worker calls `Faults.check(stage, notification_id)`; a matching rule raises a
transient error (Kafka unreachable) at most `times` times (per worker process), or a deterministic one every
time for the notification it matches (a deterministic failure does not go away when retried).
Stages: intake.decode, intake.admit, intake.forward, intake.record, router.route, router.emit, router.record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiokafka.errors import KafkaConnectionError

from broker.errors import BrokerError, ConfigurationError

__all__ = ["STAGES", "Faults", "InjectedFault"]

STAGES = frozenset({"intake.decode", "intake.admit", "intake.forward", "intake.record", "router.route",
                    "router.emit", "router.record"})


class InjectedFault(BrokerError):
    """A deterministic failure injected by a fault plan."""


@dataclass
class _Rule:
    stage: str
    kind: str
    times: int
    match: str


@dataclass
class Faults:
    """The fault plan of this process (empty: every check is a no-op)."""

    rules: list[_Rule] = field(default_factory=list)

    @classmethod
    def parse(cls, plan: str) -> Faults:
        """A plan from its JSON text; a wrong plan is a configuration error naming the rule broken."""
        if not plan.strip():
            return cls()
        try:
            items = json.loads(plan)
            rules = [_Rule(str(i["stage"]), str(i["kind"]), int(i.get("times", 1)), str(i.get("match", "")))
                     for i in items]
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigurationError("fault plan: must be a JSON list of {stage, kind, times, match}") from exc
        for r in rules:
            if r.stage not in STAGES or r.kind not in ("transient", "fatal"):
                raise ConfigurationError(f"fault plan: unknown stage or kind ({r.stage}, {r.kind})")
        return cls(rules)

    def check(self, stage: str, notification_id: object) -> None:
        """Raise the planned failure for this stage and notification, if any remains."""
        if not self.rules:  # a deployment: no drill planned
            return
        nid = str(notification_id)
        for r in self.rules:
            if r.stage != stage or (r.match and r.match != nid):
                continue
            if r.kind == "fatal":
                raise InjectedFault(f"injected failure at {stage}")
            if r.times > 0:
                r.times -= 1
                raise KafkaConnectionError(f"injected transient failure at {stage}")
