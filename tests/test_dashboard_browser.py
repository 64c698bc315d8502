"""The dashboard end to end: `streamlit run dashboard.py` served on loopback, shown in a real Chromium.

Playwright drives Debian's Chromium (`apt-get install chromium`), never a browser of its own. Without
/usr/bin/chromium these tests skip, unless SHOEREC_REQUIRE_BROWSER=1 (as in CI), where they fail.
Every run leaves a screenshot per test in artifacts/ (git-ignored), taken at the end, failed or not.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from scripts.db import Database
from scripts.schema import create_schema

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PICKER = "Customer id (type to search)"
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT_S = 60  # streamlit answering /_stcore/health
WAIT_MS = 60_000  # any one thing to appear in the page (a shared, slow machine)
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


# -- the browser --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, or a skip (a failure under SHOEREC_REQUIRE_BROWSER=1). Asked for first, so
    that a machine without it skips before the bundled database is built."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is not installed (pip install -r requirements.txt)")
    if missing:
        message = "browser test needs " + "; ".join(missing)
        if os.environ.get("SHOEREC_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (SHOEREC_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One headless Chromium for this module (Playwright lives no longer than these tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab; its screenshot goes to artifacts/<test>.png when the test ends, passed or failed."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    from playwright.sync_api import Error as PlaywrightError

    ARTIFACTS.mkdir(exist_ok=True)
    try:
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), timeout=15_000)
    except PlaywrightError as exc:  # a screenshot is a help, not a result: never mask the test's outcome
        warnings.warn(f"no screenshot of {request.node.name}: {exc}", stacklevel=1)
    finally:
        context.close()


# -- the server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Terminate streamlit and anything it started (its own process group), then kill if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=10)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def serve_dashboard(tmp_path, request) -> Callable[[str], str]:
    """Start `streamlit run dashboard.py` on a database; returns the page's address. Stopped at teardown."""

    def serve(db_url: str) -> str:
        port = free_port()
        log_path = tmp_path / f"streamlit_{port}.log"
        command = [
            sys.executable, "-m", "streamlit", "run", "dashboard.py",
            "--server.port", str(port),
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        env = {**os.environ, "SHOEREC_DASHBOARD_DB": db_url, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        request.addfinalizer(lambda: stop(process))

        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        return f"http://127.0.0.1:{port}/"
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.poll() is not None else "no answer"
                output = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(
                    f"streamlit did not come up on {health} ({state}, {START_TIMEOUT_S} s):\n{output}"
                )
            time.sleep(0.25)

    return serve


# -- the page -----------------------------------------------------------------------------------
def settle(tab) -> None:
    """Wait until the script run is over and no element is left over from an earlier run."""
    from playwright.sync_api import expect

    expect(tab.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning")
    expect(tab.locator('[data-stale="true"]')).to_have_count(0)


def open_dashboard(tab, address: str) -> None:
    from playwright.sync_api import expect

    tab.goto(address)
    expect(tab.get_by_role("combobox", name=PICKER)).to_be_visible()
    settle(tab)


def pick_customer(tab, user_id: int) -> None:
    """Choose a customer the way a person does: click the picker, type the id, press Enter."""
    from playwright.sync_api import expect

    picker = tab.get_by_role("combobox", name=PICKER)
    picker.click()
    picker.press("ControlOrMeta+a")
    picker.press_sequentially(str(user_id), delay=30)
    expect(tab.get_by_role("option", name=str(user_id), exact=True)).to_be_visible()
    picker.press("Enter")
    expect(tab.get_by_role("heading", name=f"Customer {user_id}", exact=True)).to_be_visible()
    settle(tab)


def customer_with_care_and_replacement(db: Database) -> int | None:
    """The first customer told both to care for a pair and to replace one: the customer pictured."""
    return db.scalar(
        "select min(user_id) from user_messages where kind = 'replacement'"
        " and user_id in (select user_id from user_messages where kind = 'care_reminder')"
    )


def markdown(tab):
    """Everything Streamlit rendered from markdown (cards, headings, message titles)."""
    return tab.get_by_test_id("stMarkdownContainer")


# -- tests ----------------------------------------------------------------------------------------
def test_picking_a_customer_shows_their_recommendations_and_messages(
    chromium_path, bundled_duckdb_url, serve_dashboard, page
):
    from playwright.sync_api import expect

    with Database(bundled_duckdb_url, read_only=True) as db:
        user_id = customer_with_care_and_replacement(db)
        first_shown = db.scalar("select min(user_id) from user_profiles")
        top = db.query(
            "select rank, name from user_recommendations where user_id = ? and rank <= 3 order by rank",
            [user_id],
        )
        titles = db.query(
            "select title, count(*) from user_messages where user_id = ? group by title", [user_id]
        )
    assert user_id is not None and user_id != first_shown, "the bundled data no longer has a customer to pick"
    assert len(top) == 3 and titles

    open_dashboard(page, serve_dashboard(bundled_duckdb_url))
    expect(page.get_by_role("heading", name=f"Customer {first_shown}", exact=True)).to_be_visible()
    pick_customer(page, user_id)

    for rank, name in top:
        expect(markdown(page).get_by_text(f"{rank}. {name}", exact=True)).to_be_visible()
    for title, count in titles:
        shown = markdown(page).get_by_text(title, exact=True)
        expect(shown).to_have_count(count)
        expect(shown.first).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.evaluate("document.activeElement && document.activeElement.blur()")  # a clean screenshot


def test_shoe_name_with_markup_is_shown_as_text(chromium_path, tmp_path, serve_dashboard, page):
    from playwright.sync_api import expect

    url = str(tmp_path / "xss.duckdb")
    with Database(url) as db:
        create_schema(db)
        db.insert_df(
            "users",
            pd.DataFrame({"user_id": [1], "age": [30], "gender": ["f"], "primary_usage": ["running"]}),
        )
        db.insert_df("shoes", pd.DataFrame({
            "shoe_id": [1], "name": [XSS], "brand": ["B"], "type": ["running"], "material": ["mesh"],
            "color": ["red"], "price": [10.0], "care_instructions": ["wipe"], "lifespan_days": [300],
        }))  # fmt: skip
        db.insert_df("interactions", pd.DataFrame({
            "user_id": [1], "shoe_id": [1], "interaction_type": ["view"],
            "occurred_at": [pd.Timestamp("2024-01-01 10:00:00")],
        }))  # fmt: skip
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    open_dashboard(page, serve_dashboard(url))

    # the history grid paints on a canvas; the table inside the canvas element holds the cell text
    expect(page.get_by_role("gridcell", name=XSS, exact=True, include_hidden=True)).to_have_count(1)
    assert XSS in page.evaluate("document.body.textContent")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img[onerror], img[src=\"x\"]').length") == 0
    assert page.evaluate("Array.from(document.scripts).filter(s => s.text.includes('__xss')).length") == 0
    assert dialogs == []


# the README's pictures: one per tab, of the customer the first test picks (SHOEREC_UPDATE_SCREENSHOTS=1
# writes them to docs/ as well as artifacts/; look at each before committing it)
TABS = {  # tab: (picture, page height in pixels: enough for what the tab shows first)
    "Customer": ("dashboard-customer.png", 3600),
    "A brand-new customer": ("dashboard-new-customer.png", 900),
    "Business overview": ("dashboard-business.png", 2000),
    "Today's messages": ("dashboard-messages.png", 1300),
}
SCREENSHOT_VIEWPORT = {"width": 1400, "height": 1500}


def test_each_tab_in_the_browser_with_its_figures_and_a_picture(
    chromium_path, bundled_duckdb_url, serve_dashboard, browser
):
    from playwright.sync_api import expect

    with Database(bundled_duckdb_url, read_only=True) as db:
        user_id = customer_with_care_and_replacement(db)
        reference = db.scalar("select reference_date from current_settings")
        ahead, nearing = db.query(
            "select end_of_life_next_30_days_count, nearing_end_of_life_count from business_overview"
        )[0]
    targets = [ARTIFACTS] + ([ROOT / "docs"] if os.environ.get("SHOEREC_UPDATE_SCREENSHOTS") == "1" else [])
    for folder in targets:
        folder.mkdir(exist_ok=True)
    context = browser.new_context(viewport=SCREENSHOT_VIEWPORT)
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        open_dashboard(tab, serve_dashboard(bundled_duckdb_url))
        pick_customer(tab, user_id)
        tab.evaluate("document.activeElement && document.activeElement.blur()")
        for name, (file_name, height) in TABS.items():
            tab.set_viewport_size({"width": SCREENSHOT_VIEWPORT["width"], "height": height})
            tab.get_by_role("tab", name=name, exact=True).click()
            settle(tab)
            panel = tab.get_by_role("tabpanel", name=name, exact=True)
            if name == "Customer":
                expect(
                    panel.get_by_text(f"Messages for them on {reference:%d %b %Y}", exact=True)
                ).to_be_visible()
                expect(panel.get_by_text(re.compile(r"· \d[\d,]*\.\d\d EUR$")).first).to_be_visible()
            elif name == "Business overview":
                metric = panel.get_by_test_id("stMetric").filter(has_text="End of life in the next 30 days")
                expect(metric).to_contain_text(f"{ahead:,}")
                expect(
                    panel.get_by_test_id("stMetric").filter(has_text="Shoes nearing end of life")
                ).to_contain_text(f"{nearing:,}")
                expect(panel.get_by_text("better than the best baseline").first).to_be_visible()
                expect(panel.get_by_text("this month")).to_have_count(0)
            expect(tab.get_by_test_id("stException")).to_have_count(0)
            tab.wait_for_timeout(500)  # charts finish drawing
            for folder in targets:
                tab.screenshot(path=str(folder / file_name), timeout=30_000)
    finally:
        context.close()
