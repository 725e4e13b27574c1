"""The checks of the labs 09-11 compute their expected values from what they are given.

The notebooks' own tests run every check right and wrong; these pin the computations on small
inputs, quickly, so a change in the grader's results, a study's table or a message's headers
shows up here first.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mailsim.live.grade import GradeResult
from mailsim.study import load_study
from mailsim.teach.exercises import client_lab, real_sockets, study


def test_client_lab_reads_the_failures_and_the_refusal_from_the_grading() -> None:
    results = pd.DataFrame(
        {
            "student": ["bob", "bob", "carol"],
            "situation": ["plain", "dot-line", "no-pipelining"],
            "passed": [True, False, False],
        }
    )
    assert client_lab.failed_situations(results, "bob") == {"dot-line"}
    assert client_lab.check_failed_situations({"dot-line"}, results, "bob")
    assert not client_lab.check_failed_situations({"plain"}, results, "bob")
    carol = GradeResult(
        "no-pipelining",
        "title",
        False,
        evidence=("C: MAIL FROM:<a@b>   (sent 0.1 ms BEFORE ...)", "S: 554 5.5.0 Error"),
    )
    assert client_lab.refusal_code(carol) == 554
    verdict = client_lab.check_refusal_code(250, carol)
    assert not verdict and "S: line" in verdict.hint


def test_study_checks_take_the_seed_and_the_best_policy_from_the_study() -> None:
    outage = load_study("outage-study")
    assert study.seed_of(outage, 4) == outage.runs()[4].seed
    assert study.check_seed(outage.runs()[4].seed, outage, 4)
    table = pd.DataFrame(
        {
            "metric": ["latency_mean"] * 3 + ["attempts_mean"] * 3,
            "faults[0].down_for": ["12h"] * 6,
            "servers.retry.policy": ["fixed", "postfix", "exim"] * 2,
            "mean": [11.6, 11.5, 13.7, 18.0, 13.0, 14.5],
        }
    )
    assert study.best_policy(table, "latency_mean", "12h") == "postfix"
    assert study.best_policy(table, "attempts_mean", "12h") == "postfix"
    verdict = study.check_best_policy("exim", table, "latency_mean", "12h")
    assert not verdict and "12h row" in verdict.hint


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_received_lines_counts_the_servers_a_message_passed(hops: int) -> None:
    message = "".join(f"Received: from h{n}\r\n\tby x\r\n" for n in range(hops)) + "\r\nbody\r\n"
    assert real_sockets.received_lines(message) == hops
    assert real_sockets.check_received_lines(hops, message)


def test_first_wait_is_read_from_the_first_deferral() -> None:
    records = [
        {"type": "mail.attempt", "t": 0.0},
        {"type": "mail.defer", "t": 60.0, "next_attempt": 60.0 + 35 * 60},
        {"type": "mail.defer", "t": 3000.0, "next_attempt": 3000.0 + 31 * 60},
    ]
    assert real_sockets.first_wait_minutes(records) == 35
    assert real_sockets.check_first_wait(34.6, records)
    assert not real_sockets.check_first_wait(31, records)
