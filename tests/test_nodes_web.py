"""A web server and a browser on the simulated network: HTTP pulls, traced like SMTP."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.scenario import ScenarioError, load_scenario
from mailsim.trace.exports import transcript


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return mailsim.load("push-and-pull").run(strict=True)


def test_the_browser_pulls_every_file_whole_over_one_connection(result) -> None:  # type: ignore[no-untyped-def]
    downloads = [r for r in result.records if r["type"] == "web.download"]
    assert [(d["path"], d["status"], d["size"]) for d in downloads] == [
        ("/reading-list.txt", 200, 48),
        ("/grammar-book.pdf", 200, 300_000),
        ("/atlas.jpg", 200, 2_000_000),
    ]
    assert len({d["conn"] for d in downloads}) == 1
    [browser] = result.world.browsers
    assert (
        browser.received["/atlas.jpg"]
        == result.world.web_servers["india-mail"].files["/atlas.jpg"].data
    )


def test_http_is_traced_line_by_line_with_the_body_as_one_line(result) -> None:  # type: ignore[no-untyped-def]
    conn = next(r["conn"] for r in result.records if r["type"] == "web.download")
    text = transcript(result.records, conn)
    assert "india-mail:80 (HTTP)" in text.splitlines()[0]
    assert "C: GET /atlas.jpg HTTP/1.1" in text and "S: HTTP/1.1 200 OK" in text
    assert "S: [2,000,000 octets of body]" in text
    bodies = [r for r in result.records if r["type"] == "http.line" and "body" in r]
    assert [b["body"] for b in bodies] == [48, 300_000, 2_000_000]


def test_one_request_at_a_time_costs_a_round_trip_per_file(result) -> None:  # type: ignore[no-untyped-def]
    gets = [
        r["t"] for r in result.records if r["type"] == "http.line" and r["line"].startswith("GET")
    ]
    done = [r["t"] for r in result.records if r["type"] == "web.download"]
    # Each GET leaves only when the previous file has arrived.
    assert gets[1] == pytest.approx(done[0]) and gets[2] == pytest.approx(done[1])


def test_the_sequence_chart_draws_http_arrows(result) -> None:  # type: ignore[no-untyped-def]
    conn = next(r["conn"] for r in result.records if r["type"] == "web.download")
    fig = result.plot_sequence(connection=conn)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "GET /atlas.jpg HTTP/1.1" in labels
    assert "HTTP line" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


BASE = """
name: web
duration: 10min
nodes:
  pc: {kind: host}
  site: {kind: host}
links:
  - {between: [pc, site], latency: 5ms}
"""


def test_a_download_from_a_node_that_serves_nothing_is_refused_with_its_place() -> None:
    text = BASE + "downloads:\n  - {at: 1min, from: pc, server: site, paths: [/a]}\n"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(text)
    assert "downloads[0].server: site serves no files; list it under web_servers" in str(
        caught.value
    )


def test_a_web_file_needs_an_absolute_path() -> None:
    text = BASE + "web_servers:\n  - {node: site, files: [{path: a.txt, kind: file, size: 1}]}\n"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(text)
    assert "web_servers[0].files[0].path" in str(caught.value)
    assert "starting with '/'" in str(caught.value)


@pytest.mark.parametrize("mode", ["pipelined", "per-file"])
def test_pipelined_and_per_file_downloads(mode: str) -> None:
    text = (
        BASE
        + "web_servers:\n  - {node: site, files: [{path: /a, kind: file, size: 10kB},"
        + " {path: /b, kind: photo, size: 50kB}]}\n"
        + "downloads:\n  - {at: 1min, from: pc, server: site, paths: [/a, /b, /c],"
        + f" connection: {mode}}}\n"
    )
    run = load_scenario(text).run(strict=True)
    downloads = [r for r in run.records if r["type"] == "web.download"]
    assert [d["status"] for d in downloads] == [200, 200, 404]
    conns = {d["conn"] for d in downloads}
    assert len(conns) == (1 if mode == "pipelined" else 3)
