"""The one backoff and Retry-After rule (components/backoff.py) every client shares."""

from __future__ import annotations

import pytest

from components.backoff import BACKOFF_CAP, backoff, retry_after, retry_pause, wait_delay


@pytest.mark.parametrize("value, seconds", [("3", 3.0), (" 2.5 ", 2.5), (7, 7.0), ("-4", 0.0),
                                            (None, None), ("", None), ("nan", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", None)])
def test_retry_after_reads_delay_seconds_only(value: object, seconds: float | None) -> None:
    assert retry_after(value) == seconds


def test_backoff_doubles_to_the_cap_and_jitter_only_shortens_it() -> None:
    assert [backoff(n, jitter=False) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    for n in range(1, 8):
        assert backoff(n, jitter=False) / 2 <= backoff(n) <= backoff(n, jitter=False)


def test_the_servers_retry_after_wins_unless_capped_and_zero_means_back_off() -> None:
    assert retry_pause("30", 1) == 30
    assert retry_pause("30", 1, cap=12) == 12
    assert retry_pause("0", 3, jitter=False) == 2
    assert retry_pause(None, 2, jitter=False) == 1


def test_a_waits_delay_grows_with_the_time_waited_between_start_and_cap() -> None:
    assert wait_delay(0) == 0.5 and wait_delay(40) == 5 and wait_delay(10_000) == BACKOFF_CAP
