"""The project's OAuth secrets carry a signature in their lifetime (issue 21): an orphan of a
run that died is told from a secret made by hand, and the signature never makes a fresh secret
due for rotation."""

from __future__ import annotations

import datetime as dt

from databricks.sdk.service.oauth2 import SecretInfo

from components.providers.oauth_secret import (
    DAY,
    SIGNATURE,
    OAuthSecretProvider,
    due_for_rotation,
    is_signed,
    lifetime_seconds,
)

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def info(seconds: float) -> SecretInfo:
    return SecretInfo(id="s", create_time=T0.isoformat(),
                      expire_time=(T0 + dt.timedelta(seconds=seconds)).isoformat())


def test_our_lifetimes_are_signed_and_hand_made_ones_are_not() -> None:
    for days in (1, 30, 90, 730):
        assert is_signed(info(lifetime_seconds(days)))
        assert is_signed(info(lifetime_seconds(days) + 1))  # the two times a moment apart
        assert not is_signed(info(days * DAY))  # whole days: the UI, the CLI, the default
        assert not is_signed(info(days * DAY - 3600))  # whole hours
    assert not is_signed(SecretInfo(id="s"))  # no times: nothing proves it ours
    assert lifetime_seconds(30) == 30 * DAY - SIGNATURE


def test_a_fresh_secret_is_never_due_whatever_the_window() -> None:
    args = {"service_principal_id": "1", "application_id": "a", "scopes": ["all-apis"],
            "lifetime_days": 30, "rotate_before_days": 29.99}
    fresh = {**args, "secret_id": "s", "status": "ACTIVE",
             "expire_time": (T0 + dt.timedelta(seconds=lifetime_seconds(30))).isoformat()}
    old = OAuthSecretProvider.stored_of(fresh)
    new = OAuthSecretProvider.args_of(args)
    assert not due_for_rotation(old, new, T0)
    assert due_for_rotation(old, new, T0 + dt.timedelta(hours=2))  # then the window applies
