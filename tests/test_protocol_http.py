"""The sans-IO HTTP/1.1 machine: requests and responses, persistence, pipelining, errors."""

from __future__ import annotations

import random

import pytest

from mailsim.protocol import http


def serve(server: http.HTTPServer, files: dict[str, bytes]) -> bytes:
    """Answer every complete request the server has, from ``files``."""
    out = b""
    while isinstance(event := server.next_event(), http.Request):
        body = files.get(event.target)
        status = 200 if body is not None else 404
        out += server.send(http.Response(status, (("Content-Type", "text/plain"),), body or b""))
    return out + server.data_to_send()


def test_get_over_a_persistent_connection_one_request_at_a_time() -> None:
    files = {"/a": b"alpha", "/b": b"beta" * 1000}
    client, server = http.HTTPClient("usa.com"), http.HTTPServer()
    client.request("/a")
    client.request("/b", close=True)
    first = client.data_to_send()
    assert first == b"GET /a HTTP/1.1\r\nHost: usa.com\r\nUser-Agent: mailsim\r\n\r\n"
    server.receive_data(first)
    reply = serve(server, files)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 5\r\n" in reply
    client.receive_data(reply)
    answer = client.next_event()
    assert isinstance(answer, http.Response) and answer.body == b"alpha"
    assert answer.request is not None and answer.request.target == "/a"
    # Only now does the second request leave: one round trip per file without pipelining.
    second = client.data_to_send()
    assert second.startswith(b"GET /b HTTP/1.1") and b"Connection: close" in second
    server.receive_data(second)
    client.receive_data(serve(server, files))
    last = client.next_event()
    assert isinstance(last, http.Response) and last.body == files["/b"]
    assert server.state is http.HTTPState.CLOSED and client.state is http.HTTPState.CLOSED


def test_pipelined_requests_go_out_together_and_are_answered_in_order() -> None:
    client, server = http.HTTPClient("usa.com", pipelining=True), http.HTTPServer()
    for path in ("/1", "/2", "/3"):
        client.request(path)
    wire = client.data_to_send()
    assert wire.count(b"GET ") == 3
    server.receive_data(wire)
    client.receive_data(serve(server, {"/1": b"one", "/3": b"three"}))
    got = []
    while isinstance(event := client.next_event(), http.Response):
        got.append((event.request.target, event.status, event.body))  # type: ignore[union-attr]
    assert got == [("/1", 200, b"one"), ("/2", 404, b""), ("/3", 200, b"three")]


def test_a_response_split_anywhere_is_read_whole() -> None:
    client, server = http.HTTPClient("usa.com"), http.HTTPServer()
    client.request("/photo")
    server.receive_data(client.data_to_send())
    reply = serve(server, {"/photo": bytes(range(256)) * 40})
    for i in range(0, len(reply), 7):
        assert client.next_event() is http.NEED_DATA
        client.receive_data(reply[i : i + 7])
    event = client.next_event()
    assert isinstance(event, http.Response) and event.body == bytes(range(256)) * 40


def test_head_gets_the_header_fields_and_no_body() -> None:
    client, server = http.HTTPClient("usa.com"), http.HTTPServer()
    client.request("/a", method="HEAD")
    server.receive_data(client.data_to_send())
    reply = serve(server, {"/a": b"alpha"})
    assert reply.endswith(b"Content-Length: 5\r\n\r\n")
    client.receive_data(reply)
    event = client.next_event()
    assert isinstance(event, http.Response) and event.status == 200 and event.body == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /a HTTP/1.1\r\n\r\n", 400),  # no Host (RFC 9112 3.2)
        (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 501),
        (b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon (RFC 9112 5.1)
        (b"GET /a\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000, 400),  # a request line beyond 8000 octets
    ],
)
def test_a_bad_request_gets_an_error_and_the_connection_closes(
    request_bytes: bytes, status: int
) -> None:
    server = http.HTTPServer()
    server.receive_data(request_bytes)
    assert server.next_event() is http.NEED_DATA
    out = server.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode()) and b"Connection: close" in out
    assert server.state is http.HTTPState.ERROR


def test_the_client_hears_of_requests_left_unanswered_when_the_server_goes() -> None:
    client = http.HTTPClient("usa.com", pipelining=True)
    client.request("/1")
    client.request("/2")
    client.receive_data(b"")
    event = client.next_event()
    assert isinstance(event, http.ConnectionClosed) and len(event.unanswered) == 2


def test_sending_a_response_without_a_request_is_a_local_error() -> None:
    with pytest.raises(http.LocalProtocolError):
        http.HTTPServer().send(http.Response(200))


def test_random_bytes_never_raise_anything_but_protocol_states() -> None:
    rng = random.Random(7)
    for _ in range(300):
        server = http.HTTPServer()
        client = http.HTTPClient("x")
        client.request("/")
        client.data_to_send()
        noise = rng.randbytes(rng.randrange(1, 200))
        for machine in (server, client):
            machine.receive_data(noise)
            for _ in range(3):
                machine.next_event()
        assert server.state in http.HTTPState and client.state in http.HTTPState


def test_a_response_with_a_bad_content_length_is_the_servers_error() -> None:
    client = http.HTTPClient("x")
    client.request("/")
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n")
    event = client.next_event()
    assert isinstance(event, http.ConnectionClosed) and client.state is http.HTTPState.ERROR
