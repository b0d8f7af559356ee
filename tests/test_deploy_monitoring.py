"""The Grafana dashboard and the Prometheus scrape config in deploy/ against what the worker really exports: every
metric a query names exists, with every label the query groups or filters by, and every label value a query
filters on is one the worker writes (a renamed metric or label would otherwise leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.lag import Evaluation, LagStatus
from broker.metrics import Metrics, OpenClocks
from schemas.models import Route, SlaState

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
SCRAPE = ROOT / "deploy" / "prometheus.yml"
_METRIC = re.compile(r"\bmash_[a-z_]+\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-z_]+)\s*(=~|!~|!=|=)\s*\"([^\"]*)\"")


def _exported() -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> values seen, from a Metrics registry with every helper called."""
    m = Metrics()
    m.notification_in("POLICE", "PoliceDomesticAbuseIncident")
    for route in Route:
        m.output_routed(route, calendar_verified=False, authority="E06000051")
        for state in SlaState:
            m.sla_event(route, state, late=state is SlaState.MET)
    m.dead_lettered("INVALID", "intake")
    m.open_clocks({Route.FRONT_DOOR: OpenClocks(1, 1, 60.0)})
    m.routed_latency(0.2)
    for status in LagStatus:
        m.lag({("g", f"t.{status.value}", 0): Evaluation(status, 5, "test")})
    m.worker_up("w1")
    out: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for sample in family.samples:
            labels = out.setdefault(sample.name, {})
            for k, v in sample.labels.items():
                labels.setdefault(k, set()).add(v)
    return out


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


EXPRS = sorted(set(_exprs(json.loads(DASHBOARD.read_text()))))


def test_the_dashboard_has_queries() -> None:
    """The dashboard JSON parses and carries PromQL queries (the checks below are not vacuous)."""
    assert len(EXPRS) >= 10


@pytest.mark.parametrize("expr", EXPRS)
def test_every_query_names_exported_metrics_labels_and_values(expr: str) -> None:
    """Each query's metrics are exported by the worker, its `by (...)` and matcher labels exist on them, its
    matcher values are values the worker writes, and its parentheses balance."""
    exported = _exported()
    names = set(_METRIC.findall(expr))
    assert names, expr
    missing = names - set(exported)
    assert not missing, f"not exported by broker.metrics: {missing}"
    labels: dict[str, set[str]] = {}
    for name in names:
        for label, values in exported[name].items():
            labels.setdefault(label, set()).update(values)
    for group in _BY.findall(expr):
        for label in (x.strip() for x in group.split(",") if x.strip()):
            assert label in labels or (label == "le" and any(n.endswith("_bucket") for n in names)), (label, expr)
    for label, op, value in _MATCHER.findall(expr):
        assert label in labels, (label, expr)
        if op in ("=", "!="):
            assert value in labels[label], f"{label}={value!r} is never written (written: {sorted(labels[label])})"
    depth = 0
    for ch in expr:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0, expr
    assert depth == 0, expr


def test_the_scrape_config_lists_only_exported_metrics() -> None:
    """The metric names the Prometheus scrape config documents are the ones the worker exports."""
    exported = _exported()
    named = set(_METRIC.findall(SCRAPE.read_text()))
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in exported}
    assert named and named <= families | set(exported), named - families
