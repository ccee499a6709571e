"""The install rules (issue 18): `cmake --install` of the build puts hallqd,
hallq, the man pages, the demo hall, the docs, a sample config (0640) and
the systemd unit where an operator expects them; the man pages render; the
unit passes `systemd-analyze verify` with no warning (skipped where
systemd-analyze is absent); the installed hallqd starts from its installed
files."""
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from conftest import BUILD

PAGES = {"man8/hallqd.8": "hallqd", "man1/hallq.1": "hallq", "man5/hallq.yaml.5": "hallq.yaml"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    p = subprocess.run(["cmake", "--install", str(BUILD)], env=dict(os.environ, DESTDIR=str(dest)),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    cache = (BUILD / "CMakeCache.txt").read_text()
    prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    unitdir = re.search(r"^HALLQ_SYSTEMD_UNITDIR:PATH=(.*)$", cache, re.M).group(1)
    return dest, pathlib.Path(str(dest) + prefix), pathlib.Path(str(dest) + unitdir)


def test_files_in_place(installed):
    dest, root, unitdir = installed
    for f in ("sbin/hallqd", "bin/hallq"):
        assert os.access(root / f, os.X_OK), f
    assert (root / "share/hallq/examples/demo-hall.yaml").is_file()
    for f in ("README.md", "CONFIG.md", "PROTOCOL.md", "OPERATIONS.md"):
        assert (root / "share/doc/hallq" / f).is_file(), f
    for page in PAGES:
        assert (root / "share/man" / page).is_file(), page
    cfg = list(dest.rglob("etc/hallq/hall.yaml"))
    assert len(cfg) == 1, cfg
    assert stat.S_IMODE(cfg[0].stat().st_mode) == 0o640
    assert (unitdir / "hallqd.service").is_file()
    # Nothing of the source tree is installed that should not be.
    assert not list(root.rglob("*.scd")) and not list(root.rglob("*.c"))


def test_man_pages_render(installed):
    _, root, _ = installed
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    for page, name in PAGES.items():
        p = subprocess.run(["man", "-l", str(root / "share/man" / page)], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, MANPAGER="cat",
                                                           MANWIDTH="80"))
        assert p.returncode == 0, p.stderr
        assert "NAME" in p.stdout and name + " - " in p.stdout, p.stdout[:500]
        assert p.stderr == "", p.stderr


def test_unit_verifies(installed, tmp_path):
    _, root, unitdir = installed
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = (unitdir / "hallqd.service").read_text()
    m = re.search(r"^ExecStart=(\S+)", unit, re.M)
    assert m and m.group(1).endswith("/sbin/hallqd"), unit
    for key in ("Type=notify", "User=hallq", "StateDirectory=hallq", "RuntimeDirectory=hallq",
                "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                "SystemCallFilter=@system-service", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert re.search("^" + re.escape(key) + "$", unit, re.M), key
    # verify checks that ExecStart exists: point it at the DESTDIR's hallqd.
    (tmp_path / "hallqd.service").write_text(
        unit.replace("ExecStart=" + m.group(1), "ExecStart=" + str(root / "sbin/hallqd")))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "hallqd.service")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stdout + p.stderr


def test_installed_hallqd_starts_its_demo(installed, tmp_path):
    # The installed binary knows no source path: --version works, and
    # --config naming the installed demo hall serves it.
    _, root, _ = installed
    hallqd = root / "sbin/hallqd"
    v = subprocess.run([str(hallqd), "--version"], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and v.stdout.startswith("hallqd "), v
    demo = root / "share/hallq/examples/demo-hall.yaml"
    p = subprocess.Popen([str(hallqd), "--config", str(demo), "--data", str(tmp_path / "d"),
                          "--tcp", "127.0.0.1:0", "--http", "", "--unix", str(tmp_path / "s")],
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if line.startswith("hallqd ready "):
                break
        assert lines and lines[-1].startswith("hallqd ready "), "".join(lines)
        p.terminate()
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
