"""`make run` checks its ports before it starts anything, names a taken one and how to move it;
the web and fake ports come from the environment."""

import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from providers.management.commands.run_fakes import FAKES, configured_port


@pytest.fixture
def listener():
    """A port held by "another program": a socket listening on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_web_port_is_named_before_anything_starts(listener, monkeypatch):
    started = []
    monkeypatch.setattr(
        "backoffice.management.commands.rundemo.start_fakes", lambda *a, **k: started.append(1)
    )

    with pytest.raises(CommandError) as refused:
        call_command("rundemo", addrport=f"127.0.0.1:{listener}", free_fake_ports=True)

    assert f"Port {listener}, for the web server (DEMO_WEB_PORT), is taken" in str(refused.value)
    assert "DEMO_WEB_PORT=8010" in str(refused.value)
    assert started == []


def test_a_taken_fake_port_is_named(listener, monkeypatch):
    # The callisto fake (second in line) lands on the taken port.
    monkeypatch.setenv("DEMO_FAKES_FIRST_PORT", str(listener - 1))
    monkeypatch.setattr(
        "backoffice.management.commands.rundemo.start_fakes", pytest.fail, raising=True
    )
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        web_port = free.getsockname()[1]

    with pytest.raises(CommandError) as refused:
        call_command("rundemo", addrport=f"127.0.0.1:{web_port}")

    assert f"Port {listener}, for the callisto fake (DEMO_FAKES_FIRST_PORT)" in str(refused.value)


def test_the_fakes_ports_follow_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_FAKES_FIRST_PORT", "9200")

    assert [configured_port(entry) for entry in FAKES] == [9200, 9201, 9202, 9203, 9204]


def test_without_the_environment_the_fakes_keep_their_documented_ports(monkeypatch):
    monkeypatch.delenv("DEMO_FAKES_FIRST_PORT", raising=False)

    assert [configured_port(entry) for entry in FAKES] == [8101, 8102, 8103, 8104, 8105]


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_first_fake_port_that_is_no_port_is_refused(monkeypatch, value):
    monkeypatch.setenv("DEMO_FAKES_FIRST_PORT", value)

    with pytest.raises(CommandError, match="DEMO_FAKES_FIRST_PORT must be a port number"):
        configured_port(FAKES[0])
