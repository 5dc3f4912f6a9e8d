"""What the CLI tests share: invoking csibench in-process and checking the one-line error contract."""

from __future__ import annotations

from typer.testing import CliRunner

from csibench.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, *fragments: str):
    """Exit ``code``, no traceback, exactly one ``error: …`` line on stderr containing every fragment."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
