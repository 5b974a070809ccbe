"""Close codes: every code has a reason that fits a close frame, and the policy holds."""

from switchboard.closecodes import REASONS, CloseCode, may_reconnect


def test_every_code_has_a_short_reason():
    for code in CloseCode:
        assert code in REASONS
        assert 0 < len(REASONS[code].encode()) <= 123


def test_4xx_codes_are_terminal_and_others_reconnect():
    assert not may_reconnect(CloseCode.UNAUTHORIZED)
    assert not may_reconnect(CloseCode.NOT_FOUND)
    assert may_reconnect(CloseCode.TRY_AGAIN_LATER)
    assert may_reconnect(CloseCode.RECONNECT)
    assert may_reconnect(CloseCode.GOING_AWAY)


def test_protocol_page_documents_every_close_code():
    import re

    from switchboard.config import ROOT

    readme = (ROOT / "docs" / "protocol.md").read_text()
    documented = {int(c) for c in re.findall(r"^\| (\d{4}) \|", readme, re.M)}
    assert documented == {int(c) for c in CloseCode}


def test_protocol_page_documents_every_error_code():
    import re

    from switchboard.config import ROOT
    from switchboard.errors import ErrorCode

    readme = (ROOT / "docs" / "protocol.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", readme.split("## Error frames")[1].split("## ")[0]))
    assert {e.value for e in ErrorCode} <= documented
