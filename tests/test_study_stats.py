"""Metrics of a run and the statistics over replications: percentiles, t quantiles, 95% CIs."""

from __future__ import annotations

import math
import statistics

import pytest

import mailsim
from mailsim.study.metrics import check_metric, measure, metric_title, percentile
from mailsim.study.stats import estimate, t_quantile_975


@pytest.mark.parametrize(
    ("df", "t"),
    [(1, 12.7062), (2, 4.3027), (9, 2.2622), (30, 2.0423), (40, 2.0211), (60, 2.0003),
     (120, 1.9799), (1000, 1.9623)],
)  # fmt: skip
def test_t_quantiles_match_the_tables(df: int, t: float) -> None:
    assert t_quantile_975(df) == pytest.approx(t, abs=1e-4)


def test_the_interval_is_mean_plus_minus_t_s_over_root_n() -> None:
    values = [10.0, 12.0, 9.0, 11.0, 13.0]
    est = estimate(values)
    half = 2.7764 * statistics.stdev(values) / math.sqrt(5)
    assert est.n == 5 and est.mean == pytest.approx(11.0)
    assert est.std == pytest.approx(statistics.stdev(values))
    assert (est.ci_low, est.ci_high) == pytest.approx((11.0 - half, 11.0 + half))


def test_nan_values_are_left_out_and_one_value_has_no_interval() -> None:
    est = estimate([5.0, math.nan])
    assert est.n == 1 and est.mean == 5.0 and math.isnan(est.ci_low) and math.isnan(est.std)
    assert estimate([]).n == 0 and math.isnan(estimate([math.nan]).mean)
    assert estimate([3.0, 3.0, 3.0])[1:] == (3.0, 0.0, 3.0, 3.0)


def test_percentiles_interpolate_between_order_statistics() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert math.isnan(percentile([], 50))


def test_metrics_of_a_run_agree_with_its_summary_and_trace() -> None:
    result = mailsim.load("persistent-connection").run()
    values = measure(
        result,
        [
            "latency_mean",
            "latency_p90",
            "latency_max",
            "attempts_mean",
            "attempts_total",
            "delivered",
            "delivered_fraction",
            "connections",
            "relay_connections",
            "queue_peak",
            "totals.dsn_sent",
            "end_time",
            ("messages", lambda r: float(len(r.summary()["messages"]))),
        ],
    )
    summary = result.summary()
    latencies = [m["latency"] for m in summary["messages"] if m["kind"] == "mail"]
    assert values["latency_mean"] == pytest.approx(statistics.fmean(latencies))
    assert values["latency_max"] == max(latencies)
    assert min(latencies) <= values["latency_p90"] <= max(latencies)
    assert values["delivered"] == summary["totals"]["delivered"] == 10
    assert values["delivered_fraction"] == 1.0
    assert values["connections"] == summary["totals"]["connections"]
    assert values["totals.dsn_sent"] == 0.0 and values["end_time"] == 1800.0
    assert values["messages"] == 10.0
    # india-mail carries James's five over one connection, uk-mail opens one per message.
    relays = [r for r in result.records if r["type"] == "tcp.open" and r["sport"] == 25]
    assert values["relay_connections"] == len(relays) >= 6
    # All ten queue at once while the link is down: india-mail and uk-mail hold five each.
    assert values["queue_peak"] == 5.0
    assert values["attempts_total"] == values["attempts_mean"] * 10


def test_a_run_with_nothing_delivered_has_no_latency() -> None:
    scenario = mailsim.load("link-outage")
    values = measure(scenario.run(until=3600), ["latency_mean", "latency_p95", "delivered"])
    assert math.isnan(values["latency_mean"]) and math.isnan(values["latency_p95"])
    assert values["delivered"] == 0.0


@pytest.mark.parametrize(
    ("name", "ok"),
    [("latency_p5", True), ("latency_p99", True), ("latency_p0", False), ("latency_p100", False),
     ("totals.bounced", True), ("totals.nothing", False), ("end_time", True),
     ("end_time.x", False), ("", False), ("queue_peek", False)],
)  # fmt: skip
def test_metric_names_are_checked(name: str, ok: bool) -> None:
    assert (check_metric(name) is None) is ok


def test_metric_titles_read_as_english() -> None:
    assert metric_title("latency_p95") == "delivery delay, 95th percentile"
    assert metric_title("latency_p1") == "delivery delay, 1st percentile"
    assert metric_title("latency_p12") == "delivery delay, 12th percentile"
    assert metric_title("latency_p22") == "delivery delay, 22nd percentile"
    assert metric_title("totals.dsn_sent") == "totals.dsn_sent"
