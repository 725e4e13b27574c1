"""Staging an outage by hand: the control socket of a live run and ``mailsim ctl``.

``mailsim serve SCENARIO`` listens on a Unix socket, ``ctl.sock`` in its run folder; ``mailsim
ctl --dir DIR COMMAND ...`` (or its interactive prompt) connects, sends one request and prints the
answer. A request is one line of JSON, ``{"command": "cut", "args": ["india-mail", "usa-mail"]}``;
the answer is one line, ``{"ok": true, "text": "cut link india-gw - usa-gw"}``. The socket is
reachable only through the file system, so only the user who started the run (and root) can
stage outages in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

#: The socket's name in the run folder.
SOCKET_NAME = "ctl.sock"
#: The longest path a Unix socket may have (sun_path is 108 octets on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
#: A request line is at most this long (a command and a few node names).
MAX_REQUEST = 4096

#: The commands, their arguments and what they do (the prompt's ``help``).
COMMANDS = {
    "stop": ("SERVER", "the server crashes: it stops answering; its queue stays on disk"),
    "start": ("SERVER", "the server comes back and carries on with its queue"),
    "cut": ("NODE NODE", "the route between the two nodes fails (its longest links go down)"),
    "heal": ("[NODE NODE]", "what was cut comes back up (everything, or the route between two)"),
    "status": ("", "which servers, links and routes are up; what each queue holds"),
}

#: Answers a request: (command, arguments) -> (ok, text).
Handler = Callable[[str, list[str]], Awaitable[tuple[bool, str]]]


class ControlError(Exception):
    """The control socket cannot be used (no run there, a path too long); the text says why."""


def socket_path(directory: Path) -> Path:
    """The control socket of the run in ``directory``.

    Raises:
        ControlError: the path is too long for a Unix socket.
    """
    path = directory.resolve() / SOCKET_NAME
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ControlError(
            f"{path}: the run folder's path is too long for its control socket "
            f"({len(str(path))} characters, at most {MAX_SOCKET_PATH}); use a shorter --dir"
        )
    return path


async def serve_control(directory: Path, handler: Handler) -> asyncio.base_events.Server:
    """Listen on the run's control socket; each connection sends requests, one per line."""
    path = socket_path(directory)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a run that was killed

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                ok, text = await _answer(line, handler)
                writer.write(json.dumps({"ok": ok, "text": text}).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(client, path=str(path), limit=MAX_REQUEST)


async def _answer(line: bytes, handler: Handler) -> tuple[bool, str]:
    try:
        request = json.loads(line)
        command = request["command"]
        args = request.get("args", [])
        if not isinstance(command, str) or not all(isinstance(a, str) for a in args):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return False, 'a request is one line of JSON: {"command": "stop", "args": ["usa-mail"]}'
    if command not in COMMANDS:
        return False, f"unknown command {command!r}; the commands are {', '.join(COMMANDS)}"
    return await handler(command, list(args))


def send_command(directory: Path, command: str, args: list[str], timeout: float = 10.0) -> str:
    """Send one command to the run in ``directory``; returns its answer.

    Raises:
        ControlError: no run listens there, or the run refused the command (the text says why).
    """
    with _connect(directory, timeout) as sock:
        return _ask(sock, command, args)


def _connect(directory: Path, timeout: float) -> socket.socket:
    path = socket_path(directory)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise ControlError(
            f"{directory}: no live run answers here; start one with "
            f"'mailsim serve SCENARIO --dir {directory}'"
        ) from None
    return sock


def _ask(sock: socket.socket, command: str, args: list[str]) -> str:
    sock.sendall(json.dumps({"command": command, "args": args}).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ControlError("the live run closed the control connection (did it stop?)")
        data += chunk
    answer = json.loads(data)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("text", "refused")))
    return str(answer.get("text", ""))


def prompt(directory: Path, read: Callable[[str], str] = input) -> None:
    """The interactive prompt: one command per line until ``quit`` or end of input."""
    with _connect(directory, timeout=30.0) as sock:
        print(f"mailsim ctl: connected to the live run in {directory}; 'help' lists commands")
        while True:
            try:
                line = read("mailsim> ").strip()
            except EOFError:
                print()
                return
            if not line:
                continue
            words = shlex.split(line)
            command, args = words[0].lower(), words[1:]
            if command in ("quit", "exit"):
                return
            if command in ("help", "?"):
                for name, (arguments, what) in COMMANDS.items():
                    print(f"  {name} {arguments}".ljust(26) + what)
                print("  quit".ljust(26) + "leave the prompt (the servers keep running)")
                continue
            try:
                print(_ask(sock, command, args))
            except ControlError as error:
                print(f"error: {error}")
