"""The real thing: `runway-costs dashboard` on a sandbox-collected database, every page
loaded in headless Chromium (Debian's, via Playwright), screenshots in artifacts/."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest

from runway_costs.sandbox.server import SandboxServer
from tests.conftest import SANDBOX_NOW, SANDBOX_SEED
from tests.dashboard.live import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    cli_server,
    collect_sandbox,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CONFIG = """
[[orgs]]
name = "studio"
api_key_env = "BROWSER_UNSET_KEY"
tags = {{ team = "growth", cost_center = "CC-104" }}
keys = {{ "{studio_key}" = "render farm" }}

[[orgs]]
name = "agency"
api_key_env = "BROWSER_UNSET_KEY"
tags = {{ team = "growth" }}

[[orgs]]
name = "indie"
api_key_env = "BROWSER_UNSET_KEY"
tags = {{ team = "core" }}

[[budgets]]
org = "studio"
credits = 150000

[[budgets]]
tag = "team=growth"
credits = 400000
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """The suite's sandbox (same seed and instant, so the same figures), serving
    resultsByApiKey too (studio and indie over 3 keys, agency over 2)."""
    with SandboxServer(seed=SANDBOX_SEED, now=SANDBOX_NOW, api_keys=3) as sb:
        yield sb


@pytest.fixture(scope="module")
def served(sandbox, tmp_path_factory) -> Iterator[str]:
    """The dashboard command serving a database collected from the sandbox, with tags
    and a key name in the config (read-only: the key variables stay unset)."""
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "runway.duckdb"
    collect_sandbox(sandbox, db)
    config = tmp / "config.toml"
    studio_key = sandbox.world.org("studio").key_ids[0]
    config.write_text(CONFIG.format(studio_key=studio_key), encoding="utf-8")
    with cli_server("dashboard", "--db", str(db), "--config", str(config)) as (url, proc):
        yield url
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the command stops its server, exit 0
        assert proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_stcore/health", timeout=2)


@pytest.fixture(scope="module")
def page(served: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1600})
        yield tab
        browser.close()


def load(page, url: str, ready_text: str, name: str) -> None:
    """Open a page, wait until its run finished, check for exceptions, screenshot it."""
    page.goto(url)
    page.get_by_text(ready_text, exact=False).first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(500)  # charts render after the run
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000, name
    assert page.locator('[data-testid="stException"]').count() == 0, name
    assert page.locator("h1").first.inner_text() == name.capitalize()


def shown(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_overview(page, served: str, sandbox) -> None:
    load(page, served, "Balance (credits)", "overview")
    now = sandbox.world.now()
    balance = sum(sandbox.world.org(o["name"]).balance(now) for o in sandbox.orgs)
    text = shown(page)
    assert f"{balance:,}" in text  # the sandbox's ground truth, summed over its 3 orgs
    assert "all organizations (agency, indie, studio)" in text
    assert "Cumulative spend" in text and "Month-end forecast (credits)" in text
    assert "Last successful collection" in text


def test_spend(page, served: str) -> None:
    load(page, f"{served}/spend", "Spend in range (credits)", "spend")
    text = shown(page)
    assert "Credits per day by model: all organizations (agency, indie, studio)" in text
    assert "gen4.5" in text and "Download Parquet" in text


def test_limits(page, served: str) -> None:
    load(page, f"{served}/limits", "Now: daily generations", "limits")
    text = shown(page)
    assert "studio: tier 3 (30-day purchase cap 200,000 credits)" in text
    assert "indie: tier 1 (30-day purchase cap 10,000 credits)" in text


def test_planner(page, served: str) -> None:
    load(page, f"{served}/planner", "Plan total (credits)", "planner")
    assert "1,753 to 1,945" in shown(page)  # the sample plan, priced by hand in test_pages


def test_alerts(page, served: str) -> None:
    load(page, f"{served}/alerts", "Rules in force", "alerts")
    text = shown(page)
    assert "No alert channels configured" in text


def test_selection_persists_in_the_browser(page, served: str) -> None:
    load(page, served, "Balance (credits)", "overview")
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="studio", exact=True).click()
    page.get_by_text("studio · as of").wait_for(timeout=30_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Spend").click()
    page.get_by_text("Credits per day by model: studio").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the main area's select box labelled ``label``."""
    box = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def settle(page, name: str) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0, name


def test_spend_group_by_tag_and_per_key(page, served: str) -> None:
    load(page, f"{served}/spend", "Spend in range (credits)", "spend")
    pick(page, "Group by", "tag: team")
    page.get_by_text("Credits per day by team: all organizations").wait_for(timeout=30_000)
    page.get_by_text("Per team").wait_for(timeout=30_000)
    settle(page, "spend-by-tag")
    pick(page, "Group by", "API key")
    page.get_by_text("Credits per day by API key: all organizations").wait_for(timeout=30_000)
    settle(page, "spend-by-key")
    text = shown(page)
    assert "Per API key" in text
    assert "no per-API-key figures" not in text  # the sandbox serves resultsByApiKey here


def test_overview_group_by_tag(page, served: str) -> None:
    load(page, served, "Balance (credits)", "overview")
    pick(page, "Group by", "tag: team")
    page.get_by_text("Per team").wait_for(timeout=30_000)
    settle(page, "overview-by-tag")
    text = shown(page)
    # balances were first collected at SANDBOX_NOW: bought is unknown, so is the headroom
    assert "Left to buy under the cap" in text
    assert "At most 260,000 (the whole cap): purchases in the last 30 days are unknown" in text
    assert "the cap may bind sooner" in text
