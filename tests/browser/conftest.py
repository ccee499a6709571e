"""The browser tests' fixtures: the integration suite's daemons
(tests/integration/conftest.py, loaded here under another name) and one
headless Chromium per test module, driven by Selenium (Debian's chromium,
chromium-driver, python3-selenium), with a profile in a temp dir; both are
stopped at the end whatever happens."""
import importlib.util
import pathlib
import shutil
import sys
import tempfile

import pytest

HERE = pathlib.Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
sys.path.insert(0, str(INTEGRATION))
_spec = importlib.util.spec_from_file_location("hallq_fixtures", INTEGRATION / "conftest.py")
fx = importlib.util.module_from_spec(_spec)
sys.modules["hallq_fixtures"] = fx
_spec.loader.exec_module(fx)

# The integration suite's fixtures and hooks, as they are.
workdir = fx.workdir
make_daemon = fx.make_daemon
daemon = fx.daemon
pytest_runtest_makereport = fx.pytest_runtest_makereport
pytest_collection_modifyitems = fx.pytest_collection_modifyitems

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1920, 1080


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with a 1920x1080 viewport (the board's screen)."""
    if not (pathlib.Path(CHROMIUM).exists() and pathlib.Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (tools/deps.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hq-chromium-")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-first-run", "--disable-extensions", "--mute-audio",
              "--window-size=%d,%d" % (WIDTH, HEIGHT), "--user-data-dir=" + profile):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    try:
        drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1,
                             "mobile": False})
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
