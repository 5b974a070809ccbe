"""The e2e fleet's settings, in a module of its own so that tests can import them
(a `conftest` module name is ambiguous: tests-e2e/faults has one too), and the check
every fleet's logs get when it stops."""

from pathlib import Path

E2E_ENV = {
    # Each inbox worker logs what it handled (shard, token, command id): the replica tests read it.
    "INBOX_RECORD_LOG": "1",
    # Short enough that a test of the timeout waits seconds, not minutes.
    "CONNECT_TIMEOUT_SECONDS": "3",
    "PRESENCE_TTL_SECONDS": "6",
    "PRESENCE_HEARTBEAT_SECONDS": "2",
    # A slow client is closed after a few hundred KB, so its test sends seconds of load.
    "WS_SEND_BUFFER_BYTES": "262144",
    # collab: small enough that the suite's edits cross it several times.
    "COLLAB_COMPACT_UPDATES": "20",
    # dashboard: a tick a second and a 3 s lease, so counting ticks and a publisher
    # handover take seconds; the webhook secret the Alertmanager-format tests send.
    "DASHBOARD_STATS_INTERVAL_SECONDS": "1",
    "DASHBOARD_LEASE_SECONDS": "3",
    "ALERT_WEBHOOK_SECRET": "e2e-alertmanager-secret",
    # reports: steps paced so a kill lands mid-report; a killed worker's task comes
    # back after 10 s (above the longest e2e report, so none runs twice while alive).
    "REPORT_STEP_SECONDS": "0.4",
    "CELERY_VISIBILITY_TIMEOUT_SECONDS": "10",
    # ws-gateway: a socket past its token's exp, or of an ended session, goes within seconds.
    "TOKEN_EXPIRY_GRACE_SECONDS": "1",
    "SESSION_RECHECK_SECONDS": "1",
}


def tracebacks(logs: Path) -> list[str]:
    """Each traceback in the logs, as `<log>: <its last line>`."""
    found = []
    for log in sorted(logs.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            # A chained exception's tracebacks are one event ("During handling ...").
            chained = i >= 2 and lines[i - 2].startswith(("During handling", "The above exception"))
            if line.startswith("Traceback (most recent call last)") and not chained:
                end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j][0].isspace()), i)
                found.append(f"{log.name}: {lines[end][:200]}")
    return found
