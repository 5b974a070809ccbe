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


def test_ws_patches_disable_names_only_real_patches(monkeypatch):
    monkeypatch.setenv("WS_PATCHES_DISABLE", "twisted_writes,autobahn_logs")
    assert patches.disabled() == {"twisted_writes", "autobahn_logs"}
    monkeypatch.setenv("WS_PATCHES_DISABLE", "twisted_write")  # a typo must not measure "off"
    with pytest.raises(SystemExit, match="twisted_write;.*twisted_writes"):
        patches.install()


def test_every_patch_has_its_own_in_process_test():
    here = Path(__file__).parent
    # layers.py's tests predate the naming: decode-once and the 4000 on a lost pub/sub.
    elsewhere = {"layers": ("test_hot_path.py", "test_pubsub_lost.py")}
    for patch in patches.PATCHES:
        files = elsewhere.get(patch.module, (f"test_patch_{patch.module}.py",))
        assert all((here / f).is_file() for f in files), f"ws_gateway.{patch.module} has no test of its own"


def test_each_patch_is_in_the_docs_table_with_the_upstream_links_its_module_gives():
    import importlib
    import re

    table = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| `(\w+)`[^\n]*$", (ROOT / "docs" / "performance.md").read_text(), re.M)
    }
    for patch in patches.PATCHES:
        assert patch.module in table, f"docs/performance.md's patch table has no row for {patch.module}"
        doc = importlib.import_module(f"ws_gateway.{patch.module}").__doc__
        for url in re.findall(r"https://github\.com/[\w./-]+", table[patch.module]):
            assert url in doc, f"{url} is in the docs table but not in ws_gateway/{patch.module}.py"
