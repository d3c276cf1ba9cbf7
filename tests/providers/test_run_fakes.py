"""The run_fakes command starts every fake and tells how to point Storno at them."""

import dataclasses
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from providers.management.commands import run_fakes


@pytest.fixture
def ephemeral_ports(monkeypatch):
    """The same fakes on port 0, so the test can't collide with a running demo."""
    entries = [dataclasses.replace(entry, port=0) for entry in run_fakes.FAKES]
    monkeypatch.setattr(run_fakes, "FAKES", entries)


def test_start_fakes_starts_every_fake_on_its_own_port(ephemeral_ports):
    running = run_fakes.start_fakes()
    try:
        names = [entry.name for entry, _fake in running]
        answers = [requests.get(f"{fake.url}/_fake/requests", timeout=5) for _e, fake in running]
    finally:
        for _entry, fake in running:
            fake.stop()

    assert {"callisto", "rebilly", "omnitron"} <= set(names)
    assert len({fake.port for _entry, fake in running}) == len(running)
    assert all(a.status_code in (200, 401) for a in answers)


def test_the_command_prints_the_environment_for_the_chosen_fakes(ephemeral_ports, monkeypatch):
    monkeypatch.setattr(run_fakes, "wait_for_interrupt", lambda: None)  # Ctrl-C at once
    out = StringIO()

    call_command("run_fakes", "--only", "callisto", "--only", "rebilly", stdout=out)

    printed = out.getvalue()
    assert "export CALLISTO_BASE_URL=http://127.0.0.1:" in printed
    assert "export REBILLY_API_KEY=" in printed
    assert "/organizations/" in printed
    assert "OMNITRON_BASE_URL" not in printed
