"""Checks of notebook 10, "A parameter study": seeds, and reading the means of a sweep."""

from __future__ import annotations

from typing import Any

from mailsim.teach.checking import Verdict, same


def seed_of(study: Any, replication: int) -> int:
    """The seed every combination of the study runs with in one replication."""
    seeds = {run.seed for run in study.runs() if run.replication == replication}
    if len(seeds) != 1:
        raise ValueError(f"replication {replication} runs with seeds {sorted(seeds)}")
    return int(seeds.pop())


def check_seed(answer: Any, study: Any, replication: int) -> Verdict:
    """The seed of one replication (the same at every combination)."""
    return same(
        answer,
        seed_of(study, replication),
        hint="every combination of a replication runs with the same seed; read the rule in "
        "'Seeds: the same luck for every combination' and the seed printed for replication 7",
    )


def best_policy(table: Any, metric: str, outage: str) -> str:
    """The retry policy with the smallest mean ``metric`` after an outage of ``outage``."""
    rows = table[(table["metric"] == metric) & (table["faults[0].down_for"] == outage)]
    return str(rows.loc[rows["mean"].idxmin(), "servers.retry.policy"])


def check_best_policy(answer: Any, table: Any, metric: str, outage: str) -> Verdict:
    """Which policy has the smallest mean of a metric after one outage length."""
    if metric == "latency_mean":
        where = f"read the {outage} row of the table of mean delays in hours (where two lines of "
        where += "the figure's left panel overlap, the table tells them apart)"
    else:
        where = f"in the right panel of the figure (attempts), look above {outage}"
    return same(
        answer,
        best_policy(table, metric, outage),
        hint=f"{where} and take the smallest; answer 'fixed', 'postfix' or 'exim'",
    )
