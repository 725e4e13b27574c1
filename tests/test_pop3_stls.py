"""The POP3 server machine's STLS (RFC 2595 4) and the plaintext-login rule under TLS."""

from __future__ import annotations

import pytest

from mailsim.protocol import pop3
from mailsim.protocol._common import LocalProtocolError


def server(**kw: bool) -> pop3.POP3Server:
    provider = pop3.MemoryProvider({"steve": "secret"})
    machine = pop3.POP3Server(provider, tls_offered=True, login_needs_tls=True, **kw)
    machine.data_to_send()
    return machine


def feed(machine: pop3.POP3Server, data: bytes) -> tuple[list[str], list[object]]:
    machine.receive_data(data)
    events: list[object] = []
    while (event := machine.next_event()) is not pop3.NEED_DATA:
        events.append(event)
        if isinstance(event, pop3.ConnectionClosed):
            break
    return machine.data_to_send().decode().splitlines(), events


def test_capa_offers_stls_and_hides_user_before_tls() -> None:
    machine = server()
    lines, _ = feed(machine, b"CAPA\r\n")
    assert "STLS" in lines and "USER" not in lines
    lines, _ = feed(machine, b"USER steve\r\n")
    assert lines[0].startswith("-ERR [AUTH] plaintext authentication disallowed")


def test_stls_then_login_works_and_cleartext_injection_is_dropped() -> None:
    machine = server()
    lines, events = feed(machine, b"STLS\r\nUSER evil\r\n")
    assert lines == ["+OK Begin TLS negotiation"]
    assert pop3.StartTLS() in events
    assert machine.state is pop3.Pop3State.TLS_STARTING
    assert machine.send(pop3.TLSStarted()) == b""
    assert machine.state is pop3.Pop3State.AUTHORIZATION
    lines, _ = feed(machine, b"CAPA\r\n")
    assert "USER" in lines and "STLS" not in lines
    lines, _ = feed(machine, b"PASS secret\r\n")
    assert lines[0].startswith("-ERR")  # the injected USER never ran
    lines, _ = feed(machine, b"USER steve\r\nPASS secret\r\n")
    assert lines[1].startswith("+OK steve's maildrop")
    lines, _ = feed(machine, b"STLS\r\n")
    assert lines[0].startswith("-ERR")


def test_stls_twice_and_without_offer() -> None:
    machine = server(tls=True)
    lines, _ = feed(machine, b"STLS\r\n")
    assert lines == ["-ERR TLS is already active"]
    plain = pop3.POP3Server(pop3.MemoryProvider({"steve": "secret"}))
    plain.data_to_send()
    lines, _ = feed(plain, b"CAPA\r\nSTLS\r\n")
    assert "STLS" not in lines and lines[-1].startswith("-ERR STLS is not offered")
    with pytest.raises(LocalProtocolError):
        plain.send(pop3.TLSStarted())
