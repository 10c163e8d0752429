"""The real dashboard in Chromium: an alert whose model is written as a Markdown image
(and an HTML img tag) shows as text, and the browser never asks the image's URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.dashboard import hostile
from tests.dashboard.live import CHROMIUM, CHROMIUM_ARGS, cli_server

pytestmark = [pytest.mark.integration, pytest.mark.browser]


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[tuple[str, list[str]]]:
    server = HTTPServer(("127.0.0.1", 0), _Counting)
    _Counting.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/steal.png", _Counting.hits
    finally:
        server.shutdown()


def test_markdown_in_an_alert_loads_nothing_and_shows_literally(target, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    url, hits = target
    db, config = tmp_path / "h.duckdb", tmp_path / "h.toml"
    model = hostile.create(db, config, url)
    requested: list[str] = []
    served = cli_server("dashboard", "--db", str(db), "--config", str(config))
    with served as (base, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{base}/alerts")
            page.get_by_text("Rules in force").first.wait_for(timeout=60_000)
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                timeout=60_000,
            )
            page.wait_for_timeout(500)
            main = page.locator('[data-testid="stMain"]')
            alert = main.locator('[data-testid="stAlert"]').filter(has_text="budget_used")
            text = alert.first.inner_text().replace("\u2060", "")  # md's word joiners
            assert model in text  # the Markdown and the tag, as written
            assert main.locator(f'img[src*="{url}"]').count() == 0
            assert main.locator(f'a[href*="{url}"]').count() == 0
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert not [r for r in requested if "steal.png" in r]
    assert hits == []
