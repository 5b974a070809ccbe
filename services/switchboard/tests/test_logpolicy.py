"""An outage is logged as one line; any other exception keeps its traceback."""

import logging

import redis

from switchboard.logpolicy import OutageFilter, outage


def record_of(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        import sys

        return logging.LogRecord("x", logging.ERROR, __file__, 1, "push %s failed", ("n1",), sys.exc_info())


def test_a_redis_connection_error_is_one_line_naming_it():
    record = record_of(redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."))
    assert OutageFilter().filter(record)
    assert record.exc_info is None
    assert logging.Formatter().format(record) == (
        "push n1 failed [outage: ConnectionError: Error 111 connecting to 127.0.0.1:6379.]"
    )


def test_an_outage_deep_in_the_chain_counts_and_a_bug_keeps_its_traceback():
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert isinstance(outage(outer), ConnectionRefusedError)
    record = record_of(KeyError("seq"))
    assert OutageFilter().filter(record)
    assert record.exc_info is not None and "Traceback" in logging.Formatter().format(record)


def test_an_operational_error_that_is_not_a_lost_connection_keeps_its_traceback():
    class OperationalError(Exception):
        pass

    assert outage(OperationalError("database is locked")) is None
    assert outage(OperationalError("connection failed: Connection refused")) is not None


def test_an_uncaught_outage_that_ends_a_process_is_one_line(tmp_path):
    """What an inbox worker printed when Redis went away: a raw traceback on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import switchboard

    script = (
        "import logging, redis\n"
        "from switchboard import logpolicy\n"
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "logging.getLogger().handlers[0].addFilter(logpolicy.OutageFilter())\n"
        "logpolicy.install()\n"
        "raise redis.exceptions.ConnectionError('Error 111 connecting to 127.0.0.1:1.')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(switchboard.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "CRITICAL uncaught exception: the process exits [outage: ConnectionError: Error 111 connecting to 127.0.0.1:1.]"
    )
