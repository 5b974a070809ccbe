"""ws-gateway's library patches refuse to install on a library they were not verified
against: another version than requirements.lock pins, or a private name gone."""

from importlib import metadata
from pathlib import Path

import pytest
from daphne.ws_protocol import WebSocketProtocol

from switchboard.config import ROOT
from ws_gateway import patches


def test_the_installed_libraries_are_the_verified_ones():
    assert patches.problems() == []


def test_another_version_than_the_lock_is_refused_by_name():
    def installed(lib):
        return "4.2.4" if lib == "daphne" else metadata.version(lib)

    found = patches.problems(installed=installed)
    assert found == ["daphne 4.2.4 is installed; ws-gateway's patches are verified against 4.2.3 (requirements.lock)"]


def test_a_private_name_gone_upstream_is_refused_and_install_does_not_start(monkeypatch):
    # As if upstream renamed it: gone from every class that defines it (autobahn's, and
    # daphne's own if another test installed the patch).
    for owner in [c for c in WebSocketProtocol.__mro__ if "_connectionMade" in vars(c)]:
        monkeypatch.delattr(owner, "_connectionMade")
    found = patches.problems()
    assert any("daphne_memory touches daphne.ws_protocol:WebSocketProtocol._connectionMade" in f for f in found)
    with pytest.raises(SystemExit, match="_connectionMade"):
        patches.install()


def test_an_instance_attribute_renamed_upstream_is_caught(monkeypatch):
    from twisted.internet import abstract

    original = abstract.FileDescriptor.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._tempDataLength = self.__dict__.pop("_tempDataLen")

    monkeypatch.setattr(abstract.FileDescriptor, "__init__", renamed)
    found = patches.problems()
    assert any("daphne_send_bound touches twisted.internet.abstract:FileDescriptor()._tempDataLen" in f for f in found)


def test_a_patched_library_missing_from_the_lock_is_refused(tmp_path: Path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "\n".join(line for line in (ROOT / "requirements.lock").read_text().splitlines() if "autobahn" not in line)
    )
    assert "autobahn is patched by ws-gateway but not pinned in requirements.lock" in patches.problems(lock=lock)


def test_requirements_in_pins_every_patched_library_to_the_locked_version():
    pinned_in = patches.locked_versions(ROOT / "requirements.in")
    locked = patches.locked_versions(ROOT / "requirements.lock")
    for lib in {lib for p in patches.PATCHES for lib in p.libraries}:
        key = patches._norm(lib)
        assert pinned_in.get(key) == locked[key], lib
