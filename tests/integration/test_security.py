"""Small guards of the hall's secrets: the config file holds tokens (a
world-readable one is warned about), the Unix socket is 0660, TCP binds to
loopback unless told otherwise."""
import os
import stat

from conftest import DEMO


def test_world_readable_config_is_warned_about(make_daemon):
    d = make_daemon(start=False)
    d.config.chmod(0o644)
    d.start()
    d.wait_log("readable by everyone")
    d.stop()
    d.config.chmod(0o600)
    d.start()
    assert "readable by everyone" not in d.logs[-1].read_text()  # this run's log


def test_unix_socket_mode(daemon):
    mode = stat.S_IMODE(os.stat(daemon.sock).st_mode)
    assert mode == 0o660, oct(mode)


def test_default_tcp_bind_is_loopback():
    text = DEMO.read_text()
    assert "addr: 127.0.0.1:7420" in text
