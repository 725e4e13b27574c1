"""Retry schedules worked out by hand for the fixed, Postfix and Exim policies, and give-up."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from mailsim.mail.retry import (
    EximRetry,
    FixedRetry,
    PostfixRetry,
    RetryPolicy,
    make_retry_policy,
    parse_retry_rules,
)

DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0


def _attempts_until_give_up(
    policy: RetryPolicy, arrival: float = 0.0, seed: int = 1
) -> list[float]:
    """Attempt times of a message that fails every time, first attempt on arrival."""
    rng = random.Random(seed)
    times = [arrival]
    while True:
        now = times[-1]
        nxt = policy.schedule(now, arrival, arrival, len(times), rng)
        if nxt is None:
            return times
        assert nxt > now
        times.append(nxt)
        assert len(times) < 10_000, "the policy never gives up"


def test_fixed_retry_waits_30_to_40_minutes() -> None:
    policy = FixedRetry()
    times = _attempts_until_give_up(policy)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(30 * MINUTE <= gap <= 40 * MINUTE for gap in gaps)
    # Jitter is real: the gaps are not all equal, and they spread over the 10 minutes.
    assert max(gaps) - min(gaps) > 8 * MINUTE


def test_fixed_retry_is_deterministic_for_a_seed() -> None:
    assert _attempts_until_give_up(FixedRetry(), seed=5) == _attempts_until_give_up(
        FixedRetry(), seed=5
    )
    assert _attempts_until_give_up(FixedRetry(), seed=5) != _attempts_until_give_up(
        FixedRetry(), seed=6
    )


def test_fixed_retry_gives_up_at_the_first_failure_after_five_days() -> None:
    times = _attempts_until_give_up(FixedRetry())
    # The last attempt is the first one at or after 5 days; the one before is still under.
    assert times[-1] >= 5 * DAY
    assert times[-2] < 5 * DAY
    # 5 days / 30-40 minutes: between 5*86400/2400 = 180 and 5*86400/1800 = 240 retries.
    assert 180 <= len(times) - 1 <= 241


def test_fixed_retry_without_jitter_is_exact() -> None:
    policy = FixedRetry(interval=1800, jitter=0)
    assert policy.next_attempt(100.0, 0.0, 0.0, 1, random.Random(1)) == 1900.0


def test_postfix_backoff_doubles_then_caps_at_4000_seconds_aligned_to_scans() -> None:
    policy = PostfixRetry()
    times = _attempts_until_give_up(policy)
    # Worked by hand (arrival 0, fails every time; scans every 300 s at 0, 300, 600, ...):
    #   fail at     0: age     0 -> backoff clamp(0)    =  300 -> ready   300 -> scan   300
    #   fail at   300: age   300 -> backoff              300 -> ready   600 -> scan   600
    #   fail at   600: age   600 -> backoff              600 -> ready  1200 -> scan  1200
    #   fail at  1200: age  1200 -> backoff             1200 -> ready  2400 -> scan  2400
    #   fail at  2400: age  2400 -> backoff             2400 -> ready  4800 -> scan  4800
    #   fail at  4800: age  4800 -> backoff capped at   4000 -> ready  8800 -> scan  9000
    #   fail at  9000: backoff 4000 -> ready 13000 -> scan 13200 (13000 / 300 = 43.3 -> 44)
    #   then every 4200 s: 17400, 21600, ...
    assert times[:10] == [0, 300, 600, 1200, 2400, 4800, 9000, 13200, 17400, 21600]
    assert [policy.backoff(t, 0.0) for t in times[:7]] == [300, 300, 600, 1200, 2400, 4000, 4000]
    # Give-up (maximal_queue_lifetime 5 d = 432,000 s): 9000 + 4200k >= 432000 first at
    # k = ceil(423000 / 4200) = 101, i.e. t = 433,200; the try before is at 429,000.
    assert times[-2:] == [429_000, 433_200]


def test_postfix_next_try_waits_for_the_queue_scan() -> None:
    policy = PostfixRetry()
    # Arrived at t = 130 and failed at once: backoff 300 -> ready at 430 -> the 600 scan.
    assert policy.next_attempt(130.0, 130.0, 130.0, 1, random.Random(1)) == 600.0
    coarse = PostfixRetry(queue_run_delay=1000)
    assert coarse.next_attempt(0.0, 0.0, 0.0, 1, random.Random(1)) == 1000.0


def test_exim_default_rules_give_the_documented_schedule() -> None:
    policy = EximRetry()
    assert policy.give_up_after == 4 * DAY
    times = _attempts_until_give_up(policy)
    # Worked by hand for 'F,2h,15m; G,16h,1h,1.5; F,4d,6h', first failure at 0:
    # F,2h,15m   : 0, 0:15, 0:30, ..., 2:00 (the rule still holds at exactly 2h), then 2:15
    # G,16h,1h,1.5 (previous gap 15m < 1h, so start at 1h): 2:15 + 1h = 3:15; gaps then grow
    #              x1.5: 1.5h -> 4:45, 2.25h -> 7:00, 3.375h -> 10:22:30, 5.0625h -> 15:26:15,
    #              7.59375h -> 23:01:52.5
    # F,4d,6h    : every 6 h from 23:01:52.5 to 95:01:52.5, whose try is scheduled at 101:01:52.5;
    #              failing then, past the 4-day cutoff, gives up.
    expected_hours = [0.25 * k for k in range(10)]  # 0 .. 2.25
    expected_hours += [3.25, 4.75, 7.0, 10.375, 15.4375, 23.03125]
    expected_hours += [23.03125 + 6 * k for k in range(1, 14)]  # 29.03125 .. 101.03125
    assert times == pytest.approx([h * HOUR for h in expected_hours])


def test_exim_gap_counts_from_a_late_try() -> None:
    policy = EximRetry()
    rng = random.Random(1)
    # The 3:15 try happened late, at 3:30: the next gap is still 1.5 h, counted from 3:30.
    assert policy.next_attempt(3.5 * HOUR, 0.0, 0.0, 11, rng) == pytest.approx(5.0 * HOUR)
    # Past the final cutoff the policy has no next try at all.
    assert math.isinf(policy.next_attempt(4 * DAY + 1, 0.0, 0.0, 30, rng))


def test_exim_queue_runs_delay_tries_to_the_next_run() -> None:
    policy = EximRetry(queue_run_interval=30 * MINUTE)
    # Due at 0:15, but queue runs come every 30 min: the try waits for the 0:30 run.
    assert policy.next_attempt(0.0, 0.0, 0.0, 1, random.Random(1)) == 30 * MINUTE


def test_exim_rules_parse_into_fixed_and_geometric_parts() -> None:
    rules = parse_retry_rules("F,2h,15m; G,16h,1h,1.5; F,4d,6h")
    assert [(r.kind, r.cutoff, r.interval, r.multiplier) for r in rules] == [
        ("F", 2 * HOUR, 15 * MINUTE, 1.0),
        ("G", 16 * HOUR, HOUR, 1.5),
        ("F", 4 * DAY, 6 * HOUR, 1.0),
    ]
    custom = EximRetry.from_text("F,1h,10m")
    assert custom.give_up_after == HOUR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "G,16h,1h",
            "retry rule 'G,16h,1h': geometric rule needs a multiplier like 'G,16h,1h,1.5'",
        ),
        ("F,2h", "retry rule 'F,2h': fixed rule needs a cutoff and an interval like 'F,2h,15m'"),
        ("X,2h,15m", "rule type must be F (fixed) or G (geometric), got 'X'"),
        ("F,2x,15m", "cutoff must be a duration like '120ms' or '30min', got '2x'"),
        ("G,16h,1h,fast", "multiplier must be a number of at least 1 like '1.5', got 'fast'"),
        ("F,4d,6h; F,2h,15m", "cutoffs must increase from rule to rule, but 2h follows 4d"),
        ("", "retry rules are empty"),
        ("F,2h,0s", "the interval must be longer than zero"),
    ],
)
def test_bad_exim_rules_say_what_is_wrong_and_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_retry_rules(text)
    assert message in str(info.value)


def test_make_retry_policy_builds_each_policy_from_scenario_settings() -> None:
    assert make_retry_policy() == FixedRetry()
    fixed = make_retry_policy("fixed", interval="45min", jitter=0, give_up_after="3d")
    assert (fixed.interval, fixed.jitter, fixed.give_up_after) == (2700.0, 0.0, 3 * DAY)
    postfix = make_retry_policy("Postfix", maximal_backoff_time="1h", delay_warning_after="4h")
    assert isinstance(postfix, PostfixRetry)
    assert (postfix.maximal_backoff_time, postfix.delay_warning_after) == (HOUR, 4 * HOUR)
    exim = make_retry_policy("exim", rules="F,1h,10m; F,2d,1h", delay_warning_after="off")
    assert isinstance(exim, EximRetry)
    assert exim.give_up_after == 2 * DAY and exim.delay_warning_after is None


def test_make_retry_policy_errors_name_the_choices() -> None:
    with pytest.raises(ValueError, match=r"must be one of 'fixed', 'postfix', 'exim', got 'qmail'"):
        make_retry_policy("qmail")
    with pytest.raises(ValueError, match=r"no setting 'intervall'; known settings: interval"):
        make_retry_policy("fixed", intervall="30min")
    with pytest.raises(ValueError, match=r"interval must be a duration like '120ms'"):
        make_retry_policy("fixed", interval="half an hour")


def test_give_up_is_five_days_by_default_and_warnings_are_off() -> None:
    for policy in (FixedRetry(), PostfixRetry()):
        assert policy.give_up_after == 5 * DAY
        assert not policy.gives_up(5 * DAY - 1, 0.0)
        assert policy.gives_up(5 * DAY, 0.0)
        assert policy.delay_warning_after is None
        assert not policy.warning_due(10 * DAY, 0.0)


def test_delay_warning_becomes_due_after_its_age() -> None:
    policy = PostfixRetry(delay_warning_after=4 * HOUR)
    assert not policy.warning_due(4 * HOUR - 1, 0.0)
    assert policy.warning_due(4 * HOUR, 0.0)


def test_describe_summarises_the_policy_in_one_line() -> None:
    assert FixedRetry().describe() == ("fixed: every 30min + 0-10min jitter; give up after 5d")
    assert "F,2h,15min; G,16h,1h,1.5; F,4d,6h" in EximRetry().describe()
