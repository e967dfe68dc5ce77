import json
import logging

from horus.logs import JsonFormatter


def test_json_lines_carry_extra_fields_and_tracebacks():
    formatter = JsonFormatter()
    record = logging.makeLogRecord(
        {
            "name": "horus.x",
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": "stage %s failed",
            "args": ("plan",),
            "follower": "0xabc",
        }
    )
    line = json.loads(formatter.format(record))
    assert line["msg"] == "stage plan failed" and line["level"] == "error" and line["follower"] == "0xabc"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(formatter.format(record))["exc"]
