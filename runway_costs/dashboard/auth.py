"""The password gate for a dashboard served beyond loopback.

``dashboard.serve`` refuses a non-loopback address without a password; the app itself
also insists (it checks its bind address and the flag the serve layer sets), so the
gate cannot be skipped by starting Streamlit another way. The comparison is constant
time (hmac.compare_digest) and the password never appears in the page.

Guessing is slowed down: after ``FREE_ATTEMPTS`` wrong passwords in a browser session,
each further attempt must wait ``BASE_DELAY * 2**(n - FREE_ATTEMPTS)`` seconds after the
last failure (at most ``MAX_DELAY``); an attempt made sooner is refused without checking
the password. The same count is kept per client address when Streamlit knows it, so
opening a new session does not reset it.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from runway_costs.dashboard.serve import AUTH_ENV, PASSWORD_ENV, SECRETS_KEY, is_local
from runway_costs.dashboard.throttle import Failures, Throttle

AUTH_OK_KEY = "_auth_ok"
FAILURES_KEY = "_auth_failures"

CLIENTS = Throttle()  # one per server process


def now() -> float:
    """The throttle's clock (monotonic seconds; tests replace it)."""
    return CLIENTS.clock()


def _client() -> str | None:
    try:
        address = st.context.ip_address
    except Exception:  # not known outside a browser session
        return None
    return address or None


def configured_password() -> str | None:
    """The password from the environment, else from Streamlit secrets."""
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    try:
        secret = st.secrets.get(SECRETS_KEY)
    except FileNotFoundError:
        return None
    except Exception:  # a malformed secrets file: treat as not configured, refuse below
        return None
    return secret if isinstance(secret, str) and secret else None


def password_required() -> bool:
    address = st.get_option("server.address")
    return os.environ.get(AUTH_ENV) == "1" or bool(address and not is_local(address))


def check_password(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def gate() -> None:
    """Stop the run until the right password was entered in this session."""
    if not password_required() or st.session_state.get(AUTH_OK_KEY):
        return
    expected = configured_password()
    if expected is None:
        st.error(
            f"This dashboard is served beyond 127.0.0.1 but no password is set "
            f"({PASSWORD_ENV} or `{SECRETS_KEY}` in Streamlit secrets)."
        )
        st.stop()
    st.title("Runway costs")
    given = st.text_input("Password", type="password", key="_password")
    if given:
        session = st.session_state.setdefault(FAILURES_KEY, Failures())
        client = _client()
        wait = max(session.wait(now()), CLIENTS.wait(client))
        if wait > 0:  # refused unchecked: guessing gains nothing by hurrying
            del st.session_state["_password"]
            st.error(f"Too many wrong passwords. Try again in {wait:.0f} s.")
            st.stop()
        if check_password(given, expected):
            st.session_state[AUTH_OK_KEY] = True
            st.session_state.pop(FAILURES_KEY, None)
            CLIENTS.succeeded(client)
            del st.session_state["_password"]
            st.rerun()
        session.failed(now())
        CLIENTS.failed(client)
        del st.session_state["_password"]  # each entry counts once, not on every rerun
        st.error("Wrong password.")
    st.stop()
