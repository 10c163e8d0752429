"""Apprise delivery to a real local webhook and a real local SMTP server."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from pydantic import SecretStr

from runway_costs.analytics.notify import (
    Delivery,
    channel_hanging,
    channel_label,
    deliver,
    redact,
    url_secrets,
)
from tests.analytics.receivers import smtp_server, webhook
from tests.collector.trickle import trickling_server

pytestmark = pytest.mark.integration


def test_json_webhook_receives_the_notice():
    with webhook() as hook:
        result = deliver(SecretStr(hook.url), "indie: balance", "runs out in 2 days", "critical")
    assert (result.ok, result.attempts, result.error) == (True, 1, None)
    assert hook.received[0]["title"] == "indie: balance"
    assert hook.received[0]["message"] == "runs out in 2 days"
    assert hook.received[0]["type"] == "failure"
    assert hook.paths == ["/hook/TOKEN_SECRET_CANARY"]


def test_failed_attempts_are_retried():
    with webhook(fail_first=2) as hook:
        result = deliver(SecretStr(hook.url), "t", "b", "warning", attempts=3, backoff=0.01)
    assert (result.ok, result.attempts) == (True, 3)
    assert len(hook.received) == 1


def test_smtp_server_receives_the_mail():
    with smtp_server() as (url, inbox):
        result = deliver(SecretStr(url), "studio: budget", "80% of the budget used", "warning")
    assert result.ok, result.error
    (mail,) = inbox.messages
    assert b"studio: budget" in mail
    assert b"80% of the budget used" in mail


def test_unreachable_channel_fails_without_revealing_the_url(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"json://user:PASS_SECRET_CANARY@127.0.0.1:{port}/TOKEN_SECRET_CANARY"
    with caplog.at_level(logging.DEBUG):
        result = deliver(SecretStr(url), "t", "b", "info", attempts=2, backoff=0.01)
    assert (result.ok, result.attempts) == (False, 2)
    assert result.error
    assert "SECRET_CANARY" not in result.error
    assert "SECRET_CANARY" not in caplog.text


def test_labels_and_redaction():
    url = "mailtos://bob:hunter22@smtp.example.com?to=ops@example.com"
    assert channel_label(SecretStr(url), 2) == "mailtos#2"
    assert redact(f"failed {url} with hunter22", url_secrets(url)) == "failed *** with ***"
    assert deliver(SecretStr("nosuch://x"), "t", "b", "info").error == (
        "Apprise does not accept this URL"
    )


def test_a_trickling_webhook_is_given_up_at_the_delivery_deadline(caplog):
    """User report: a webhook answering 200 then one byte every few seconds hung the
    alerts for minutes. The delivery ends at its deadline, and while that attempt still
    hangs the channel is not tried again (no pile of stuck threads)."""
    # (INFO: at DEBUG, urllib3 itself logs request lines, as it always has)
    with trickling_server(interval=0.5) as hook, caplog.at_level(logging.INFO):
        url = SecretStr(hook.webhook_url)
        began = time.monotonic()
        result = deliver(url, "t", "b", "critical", attempts=3, backoff=0.01, deadline=1.5)
        elapsed = time.monotonic() - began
        assert channel_hanging(url)
        again = deliver(url, "t", "b", "critical", deadline=1.5)
        requests = list(hook.requests)
    assert result == Delivery(
        False, 1, "no answer within the 1.5 s delivery deadline; gave up", hanging=True
    )
    assert 1.4 <= elapsed < 3, elapsed
    assert again == Delivery(
        False,
        0,
        "not sent: an earlier notice to this channel is still waiting for its answer",
        hanging=True,
    )
    assert requests == ["POST /hook/TOKEN_SECRET_CANARY"]
    assert "SECRET_CANARY" not in caplog.text
