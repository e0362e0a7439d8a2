"""The browser tier: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by selenium.

No browser is downloaded at run time: selenium gets the system's chromedriver explicitly, so its driver
manager never looks anything up. Without a browser or the client the tier skips, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.eval.runs import comparison_run, simulation_run

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = ("browser tier skipped: needs Chromium and its driver (apt-get install -y chromium chromium-driver) "
           "and selenium (pip install -e '.[test]')")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return INSTALL + ": selenium is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return INSTALL + f": {path} is missing"
    return None


@pytest.fixture(scope="session")
def driver():
    why = _missing()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # As root, in a container, on a closed network: no sandbox, no GPU, no background fetches, a fresh profile.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-default-apps", "--window-size=1200,900", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory) -> Path:
    return simulation_run(tmp_path_factory.mktemp("browser") / "sim")


@pytest.fixture(scope="session")
def cmp_run(tmp_path_factory) -> Path:
    return comparison_run(tmp_path_factory.mktemp("browser") / "cmp")


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Where the tier's screenshots go: pytest's tmp dir (the path is printed with -s), or $BROWSER_SCREENSHOTS
    to keep them (pytest keeps only its last few tmp dirs)."""
    keep = os.environ.get("BROWSER_SCREENSHOTS")
    d = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    d.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots: {d}")
    return d
