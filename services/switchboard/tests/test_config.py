"""Settings: the README documents exactly the settings the code declares."""

import re

from switchboard.config import ROOT, SETTINGS


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.M))
    assert documented == {s.name for s in SETTINGS}
