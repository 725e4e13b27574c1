"""``mailsim grade``: run a student's SMTP client against scripted servers and print a report card.

For each situation of :mod:`mailsim.live.situations` the grader starts a fresh live server on
127.0.0.1 (its own Maildir in a temporary folder, recording every session), runs the client
once with the placeholders of its arguments filled in and the same values in its environment,
waits for it to exit (killing it at the timeout), stops the server, and hands what it saw to the
situation's judges. Only what is observable on the wire and in the Maildir counts.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mailsim.live.server import ServeConfig, ServerThread
from mailsim.live.situations import SENDER, SITUATIONS, Finding, Outcome, Situation

__all__ = ["GradeResult", "grade", "report_card"]

#: The grader's only user; the password is never used (the client talks to the MX port).
_USERS = {"steve": "lab-password"}
#: Exit code of ``mailsim grade`` when some situation failed (README: exit codes).
EXIT_SOME_FAILED = 4


@dataclass
class GradeResult:
    """One situation's verdict.

    Attributes:
        situation: its short name; ``title`` the report card's words.
        passed: whether every judge was satisfied.
        reason: the first judge's finding when it failed ("" when passed).
        evidence: the transcript lines that show it.
        transcript: the whole dialogue of every session, for the JSON report.
        exit_code: the client's exit status (None: killed at the timeout).
    """

    situation: str
    title: str
    passed: bool
    reason: str = ""
    evidence: tuple[str, ...] = ()
    transcript: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The verdict as a JSON-ready mapping (``--json``)."""
        return {
            "situation": self.situation,
            "title": self.title,
            "verdict": "pass" if self.passed else "fail",
            "reason": self.reason,
            "evidence": list(self.evidence),
            "exit_code": self.exit_code,
            "sessions": self.transcript,
        }


def fill(arguments: Sequence[str], values: dict[str, str]) -> list[str]:
    """The client's arguments with ``{host}``, ``{port}``, ``{from}``, ``{to}``, ``{message}``."""
    out = []
    for argument in arguments:
        for key, value in values.items():
            argument = argument.replace("{" + key + "}", value)
        out.append(argument)
    return out


def run_situation(situation: Situation, command: Sequence[str], timeout: float) -> GradeResult:
    """Run the client once against a fresh server set up for ``situation``; judge it."""
    with tempfile.TemporaryDirectory(prefix="mailsim-grade-") as folder:
        root = Path(folder)
        config = ServeConfig(
            domains=("usa.com",),
            users=_USERS,
            maildir=root / "maildir",
            smtp_port=0,
            submission_port=None,
            pop3_port=None,
            smtps_port=None,
            pop3s_port=None,
            tls=situation.tls,
            strict=situation.strict,
            pipelining=situation.pipelining,
            faults=situation.faults,
            record_sessions=True,
            idle_timeout=max(timeout, 1.0),
        )
        message = root / "message.txt"
        message.write_text(situation.message, encoding="ascii", newline="\n")
        thread = ServerThread(config)
        ports = thread.start()
        try:
            values = {
                "host": "127.0.0.1",
                "port": str(ports["smtp"]),
                "from": SENDER,
                "to": ",".join(situation.recipients),
                "message": str(message),
            }
            env = dict(os.environ)
            env.update(
                SMTP_HOST=values["host"],
                SMTP_PORT=values["port"],
                MAIL_FROM=values["from"],
                MAIL_TO=values["to"],
                MAIL_FILE=values["message"],
            )
            server = thread.server
            assert server is not None
            if server.tls_ca is not None:
                env["SMTP_CAFILE"] = str(server.tls_ca)
            exit_code, timed_out, output = _run_client(fill(command, values), env, timeout)
        finally:
            thread.stop()
        assert server is not None and server.records is not None
        outcome = Outcome(
            sessions=list(server.records),
            delivered=_delivered(config.maildir),
            exit_code=exit_code,
            timed_out=timed_out,
            output=output,
        )
    finding = _judge(situation, outcome)
    return GradeResult(
        situation=situation.name,
        title=situation.title,
        passed=finding is None,
        reason=finding.reason if finding else "",
        evidence=finding.evidence if finding else (),
        transcript=outcome.sessions,
        exit_code=exit_code,
    )


def _judge(situation: Situation, outcome: Outcome) -> Finding | None:
    for judge in situation.judges:
        finding = judge(situation, outcome)
        if finding is not None:
            return finding
    return None


def _run_client(
    argv: list[str], env: dict[str, str], timeout: float
) -> tuple[int | None, bool, str]:
    """Run the client; (exit status or None, killed at the timeout, its last output)."""
    try:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        return 127, False, f"cannot run {argv[0]!r}: {error.strerror or error}"
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, False, output.decode("utf-8", "replace")[-2000:]
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return None, True, output.decode("utf-8", "replace")[-2000:]


def _delivered(maildir: Path) -> dict[str, int]:
    """How many messages each mailbox holds (the text itself is judged as it came on the wire)."""
    found: dict[str, int] = {}
    for box in sorted(p for p in maildir.iterdir() if p.is_dir() and not p.name.startswith("_")):
        found[box.name] = len(list((box / "new").glob("*"))) + len(list((box / "cur").glob("*")))
    return found


def grade(
    command: Sequence[str], situations: Sequence[str] | None = None, timeout: float = 20.0
) -> list[GradeResult]:
    """Grade a client: run ``command`` in each situation (all, in order, by default).

    Args:
        command: the client's command line; placeholders as in :func:`fill`.
        situations: situation names to run (see :data:`~mailsim.live.situations.SITUATIONS`).
        timeout: seconds each run of the client may take.

    Raises:
        ValueError: an unknown situation name (the message lists the known ones).
    """
    names = list(situations) if situations else list(SITUATIONS)
    unknown = [name for name in names if name not in SITUATIONS]
    if unknown:
        raise ValueError(
            f"unknown situation {', '.join(unknown)}; expected some of {', '.join(SITUATIONS)}"
        )
    return [run_situation(SITUATIONS[name], command, timeout) for name in names]


def report_card(results: Sequence[GradeResult], command: Sequence[str]) -> str:
    """The report card: one line per situation, the reasons with their evidence, a score."""
    width = max(len(result.title) for result in results)
    lines = [f"mailsim grade: {' '.join(command)}", ""]
    for result in results:
        verdict = "pass" if result.passed else "FAIL"
        lines.append(f"  {result.title:<{width}}  {verdict}")
        if not result.passed:
            lines.append(f"  {'':<{width}}    {result.reason}")
            lines += [f"  {'':<{width}}      {line}" for line in result.evidence]
    passed = sum(result.passed for result in results)
    lines += ["", f"score: {passed}/{len(results)} situations passed"]
    return "\n".join(lines)


def with_situation(situation: Situation, **changes: Any) -> Situation:
    """A copy of ``situation`` with some fields changed (tests, teachers' variations)."""
    return replace(situation, **changes)
