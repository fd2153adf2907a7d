"""The console in a real headless Chromium (Debian's, driven by Selenium) against the live API server, the partner
sandbox and a real `arq` worker process, so runs finish on their own while the page watches."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount, SandboxServer

ROOT = Path(__file__).resolve().parent.parent.parent
ARQ = str(Path(sys.executable).parent / "arq")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# How long the page may take to show what a test waits for (a run going through the worker included).
WAIT_SECONDS = 30
LAPTOP = (1280, 900)
PHONE = (390, 844)
# Where the screenshots go: a temporary folder, or `docs/` with CONSOLE_SCREENSHOTS_DIR=docs (for the README).
SCREENSHOTS_DIR = os.environ.get("CONSOLE_SCREENSHOTS_DIR")

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test.sh installs them)",
                allow_module_level=True)  # fmt: skip


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account()


@pytest.fixture(scope="package")
def worker(migrated_database: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `arq app.workers.WorkerSettings` process for the console tests only (other tests drain the queue
    themselves and expect runs to stay queued until they do)."""
    process = subprocess.Popen([ARQ, "app.workers.WorkerSettings"], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Console:
    """The console page in one browser tab, with what the tests read from it."""

    def __init__(self, driver: webdriver.Chrome, live_api: LiveServer) -> None:
        self.driver = driver
        self.base = live_api.url

    def open(self, url: str | None = None) -> None:
        self.driver.get(url or f"{self.base}/console")
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete")

    def go(self, route: str) -> None:
        self.driver.execute_script("window.location.hash = arguments[0]", route)

    def wait(self, condition: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
        def check(_: Any) -> Any:
            try:
                return condition()
            except StaleElementReferenceException:
                return False

        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(check)
        except TimeoutException:
            errors = self.log("browser")
            shown = f"{self.driver.current_url}\n{self.text()}"
            raise AssertionError(f"the page never showed it; it shows {shown}\nconsole: {errors}") from None

    def log(self, kind: str) -> list[dict[str, Any]]:
        """Chromium's `browser` (console) or `performance` (network) log since the last read."""
        entries: list[dict[str, Any]] = self.driver.get_log(kind)  # type: ignore[no-untyped-call]
        return entries

    def find(self, css: str) -> WebElement:
        found: WebElement = self.wait(lambda: self.visible(css))
        return found

    def visible(self, css: str) -> WebElement | None:
        found = [element for element in self.driver.find_elements(By.CSS_SELECTOR, css) if element.is_displayed()]
        return found[0] if found else None

    def text(self) -> str:
        body: str = self.driver.find_element(By.TAG_NAME, "body").text
        return body

    def wait_text(self, words: str, seconds: float = WAIT_SECONDS) -> str:
        shown: str = self.wait(lambda: words in self.text() and self.text(), seconds)
        return shown

    def button(self, label: str) -> WebElement:
        xpath = f"//button[normalize-space()={json.dumps(label)}]"
        found: WebElement = self.wait(
            lambda: next((b for b in self.driver.find_elements(By.XPATH, xpath) if b.is_displayed()), None)
        )
        return found

    def click(self, label: str) -> None:
        self.button(label).click()

    def link(self, text: str) -> WebElement:
        xpath = f"//a[contains(normalize-space(), {json.dumps(text)})]"
        found: WebElement = self.wait(
            lambda: next((a for a in self.driver.find_elements(By.XPATH, xpath) if a.is_displayed()), None)
        )
        return found

    def field(self, label: str) -> WebElement:
        """The control that a visible label names (every control of the page has one)."""
        xpath = f"//label[normalize-space()={json.dumps(label)}]"
        found = self.wait(
            lambda: next((e for e in self.driver.find_elements(By.XPATH, xpath) if e.is_displayed()), None)
        )
        return self.driver.find_element(By.ID, found.get_attribute("for"))

    def type_into(self, label: str, text: str) -> None:
        control = self.field(label)
        control.clear()
        control.send_keys(text)

    def choose(self, label: str, value: str) -> None:
        Select(self.field(label)).select_by_value(value)

    def sign_in(self, token: str) -> None:
        self.open()
        self.type_into("Operator token or tenant key", token)
        self.click("Sign in")

    def stored_token(self) -> str | None:
        token: str | None = self.driver.execute_script("return sessionStorage.getItem('lucca-connectors.token')")
        return token

    def request_urls(self) -> list[str]:
        """Every URL the browser asked for since the last call (Chromium's performance log)."""
        urls = []
        for entry in self.log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def script_errors(self) -> list[str]:
        """The browser console's errors, leaving out the API's own 4xx answers (which Chromium logs too)."""
        entries = self.log("browser")
        return [entry["message"] for entry in entries
                if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]]  # fmt: skip

    def screenshot(self, name: str, size: tuple[int, int], folder: Path) -> None:
        self.driver.set_window_size(*size)
        folder.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(folder / f"console-{name}.png"))
        self.driver.set_window_size(*LAPTOP)


@pytest.fixture
def console(live_api: LiveServer, worker: subprocess.Popen[bytes], clean_state: None) -> Iterator[Console]:
    """A fresh headless Chromium (its own profile: nothing stored between tests) on the console."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--lang=en-GB", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield Console(driver, live_api)
    finally:
        driver.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return ROOT / SCREENSHOTS_DIR if SCREENSHOTS_DIR else tmp_path / "screenshots"
