"""Seeded scenario corpora for the robustness tests: mutants of one scenario, and random worlds.

``mutants(seed, count)`` damages a small scenario that uses every section, one to three changes
at a time: a value replaced by a hostile one (huge, tiny, negative, not a number, a line break,
a control character, the wrong type, an alias bomb), a key removed or added, a value moved to
another place, a list item doubled, a reply fault given any code. ``random_worlds(seed, count)``
builds valid worlds of two to four mail servers with users, messages, traffic and every kind of
fault. Both are plain YAML texts, the same for the same seed, so a failure names a mutant that
can be regenerated and read; ``python tests/scenario_corpus.py DIR`` writes them out.
"""

from __future__ import annotations

import copy
import io
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mailsim.protocol.smtp import COMMAND_REPLIES

#: The scenario the mutants start from: small and short, so a valid mutant runs in well under a
#: second, but touching every section the loader and the builder know.
BASE = """\
name: robustness base
seed: 3
duration: 1h
nodes:
  james-pc: {kind: host, site: India}
  india-mail: {kind: mailserver, site: India, domains: [india.com],
               settings: {retry: {interval: 5min, jitter: 1min}}}
  core: {kind: router}
  usa-mail: {kind: mailserver, site: USA, domains: [usa.com]}
  steve-pc: {kind: host, site: USA}
links:
  - {between: [james-pc, india-mail], latency: 2ms, bandwidth: 100Mbps}
  - {between: [india-mail, core], latency: 60ms, bandwidth: 20Mbps, loss: 0.01}
  - {between: [core, usa-mail], latency: 50ms, bandwidth: 20Mbps, jitter: 1ms}
  - {between: [usa-mail, steve-pc], latency: 3ms, bandwidth: 100Mbps, mtu: 1400}
dns:
  ttl: 30min
  records:
    - {type: MX, name: usa.com, exchange: usa-mail, preference: 10}
servers:
  retry: {policy: fixed, interval: 10min, jitter: 2min, give_up_after: 50min}
  max_message_size: 5MB
  connection_reuse_time: 1min
users:
  - {address: james@india.com, password: grammar, host: james-pc, name: James}
  - {address: steve@usa.com, password: atlas, host: steve-pc, check_mail_every: 10min}
  - {address: '"ann lee"@usa.com', password: pw, host: steve-pc, check_mail_every: 20min}
messages:
  - {at: 1min, from: james@india.com, to: [steve@usa.com, '"ann lee"@usa.com'],
     subject: Books, body: "Grammar?\\nAtlas?",
     attachments: [{kind: photo, size: 20KB, name: shelf.jpg}]}
  - {at: 5min, from: steve@usa.com, to: [james@india.com, nobody@usa.com], cc: [], bcc: []}
traffic:
  - {rate: 6/h, size: {distribution: lognormal, median: 4KB, sigma: 1, max: 40KB},
     attachment_probability: 0.2, attachment_size: {min: 1KB, max: 10KB}, stop: 50min}
faults:
  - {link: [india-mail, core], down_at: 2min, down_for: 10min}
  - {node: usa-mail, crash_at: 20min, restart_after: 2min}
  - {service: {node: usa-mail, port: 110}, stop_at: 30min, stop_for: 5min}
  - {random: link, target: [core, usa-mail], mtbf: 20min, mttr: 1min}
  - {reply: {server: usa-mail, command: RCPT, code: 451, text: '4.7.1 Greylisted',
             first_attempt_only: true}}
telnet:
  - {at: 40min, from: james-pc, to: usa-mail,
     lines: [HELO india.com, 'MAIL FROM:<james@india.com>', 'RCPT TO:<steve@usa.com>', DATA,
             Hello, ., QUIT], pause: 1s}
trace: {data_lines: 5}
"""

#: Values that passed validation once and then crashed or hung a run, and their relatives.
HOSTILE: list[Any] = [
    0, -1, 1, 2**63, 10**400, -(10**400), 1e308, -1e308, 1e-308, float("nan"), float("inf"),
    "0", "-1", "1e308", "1" + "0" * 400, "1TB", "999TB", "10**400", "100000000000d", "1e308s",
    "1ms", "1us", "0s", "0.0001s", "1000000/s", "1/1us", "0/h", "-5/h", "1e400", ".5", "5%",
    "500%", "", " ", "\r\n", "line\nbreak", "tab\there", "nul\x00", "bell\x07", "del\x7f",
    "caf\u00e9", "\u202e", "x" * 600, "<>", "@", "a@", "@b", "a b@c.com", '"q x"@usa.com',
    '""@usa.com', "steve@usa.com", "POSTMASTER", "dns", "usa-mail", "james-pc", "nowhere",
    True, False, None, [], [1, 2], ["a", "b", "c"], {}, {"x": 1}, {"kind": "photo"},
]  # fmt: skip
#: What a slip of the finger adds to a value.
SUFFIXES = ["x", "0", "\r", "\n", " ", "TB", "000000"]
#: Reply fault commands, and some that are not.
COMMANDS = ["CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot", "QUIT", "connect", "RSET"]


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.width = 4096
    yaml.allow_unicode = False  # non-ASCII as escapes, so the file stays 7-bit
    return yaml


def _load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def dump(data: Any) -> str:
    """``data`` as YAML text."""
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in ``data`` (mapping keys and list indices), the top one excepted."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _mutate(data: Any, rng: random.Random) -> str | None:
    """Apply one random change to ``data`` in place; a text-level change returns the new text."""
    paths = list(_paths(data))
    path = rng.choice(paths)
    kind = rng.random()
    if kind < 0.45:
        _set(data, path, rng.choice(HOSTILE))
    elif kind < 0.55:
        del _get(data, path[:-1])[path[-1]]
    elif kind < 0.65:
        _set(data, path, copy.deepcopy(_get(data, rng.choice(paths))))  # a value from elsewhere
    elif kind < 0.72:
        holder = _get(data, path[:-1])
        if isinstance(holder, dict):
            holder[rng.choice(["colour", "Kind", "lantency", "to", "at", "reply"])] = 1
        else:
            holder.append(copy.deepcopy(holder[path[-1]]))  # a list item twice
    elif kind < 0.82:
        fault = {
            "server": rng.choice(["usa-mail", "india-mail"]),
            "port": rng.choice([25, 587, 25]),
            "command": rng.choice(COMMANDS),
            "code": rng.choice([rng.randrange(100, 1000), *_codes()]),
            "probability": rng.choice([1.0, 0.5]),
        }
        data["faults"].append({"reply": fault})
    elif kind < 0.88:
        value = _get(data, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _set(data, path, value * rng.choice([1000, 10**6, 10**12, -1, 1e-9]))
        else:
            _set(data, path, f"{value}{rng.choice(SUFFIXES)}")
    elif kind < 0.90:
        return _alias_bomb(dump(data), rng)
    else:
        text = dump(data)
        at = rng.randrange(len(text))
        return (
            text[:at]
            + rng.choice(["-", ":", "[", "{", "'", '"', "&a ", "*a", "\t", ""])
            + (text[at + rng.randrange(0, 3) :])
        )
    return None


def _codes() -> list[int]:
    return sorted({code for codes in COMMAND_REPLIES.values() for code in codes if code >= 400})


def _alias_bomb(text: str, rng: random.Random) -> str:
    """``text`` with a nested-alias bomb in front and one of its aliases as a value."""
    levels = rng.randrange(3, 10)
    lines = ["x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        lines.append(f"x-a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + f"\n{text}description: *a{levels - 1}\n"


def mutants(seed: int = 15, count: int = 360) -> list[str]:
    """``count`` damaged copies of :data:`BASE`, the same for the same seed."""
    rng = random.Random(seed)
    base = _load(BASE)
    out: list[str] = []
    while len(out) < count:
        data = copy.deepcopy(base)
        text: str | None = None
        for _ in range(rng.choice([1, 1, 2, 3])):
            try:
                text = _mutate(data, rng)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue  # the change met a place an earlier one removed: try another
            if text is not None:
                break
        out.append(text if text is not None else dump(data))
    return out


# --- random worlds --------------------------------------------------------------------------------


def random_world(rng: random.Random, number: int) -> str:
    """A valid world: mail servers behind routers, users, messages, traffic and faults."""
    countries = rng.sample(["india", "usa", "uk", "brazil", "japan", "kenya"], rng.randint(2, 4))
    nodes: dict[str, Any] = {"core": {"kind": "router"}}
    links: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    hosts: list[str] = []

    def link(a: str, b: str, latency: str) -> None:
        entry: dict[str, Any] = {"between": [a, b], "latency": latency}
        if rng.random() < 0.3:
            entry["loss"] = rng.choice([0.001, 0.01, 0.03])
        if rng.random() < 0.3:
            entry["bandwidth"] = rng.choice(["64kbps", "2Mbps", "1Gbps"])
        links.append(entry)

    for country in countries:
        server = f"{country}-mail"
        nodes[server] = {"kind": "mailserver", "domains": [f"{country}.com"]}
        if rng.random() < 0.4:
            nodes[server]["settings"] = {
                "durable": rng.random() < 0.7,
                "retry": rng.choice(
                    [
                        {"policy": "fixed", "interval": "5min", "jitter": "1min"},
                        {"policy": "postfix", "minimal_backoff_time": "2min"},
                        {"policy": "exim", "rules": "F,30min,5min; F,2h,20min"},
                    ]
                ),
            }
        link(server, "core", f"{rng.randint(5, 120)}ms")
        for index in range(rng.randint(1, 2)):
            host = f"{country}-pc{index}"
            nodes[host] = {"kind": "host"}
            hosts.append(host)
            link(host, server, "2ms")
            for person in rng.sample(["ann", "bob", "cy", "di", "ed"], rng.randint(1, 2)):
                local = person if rng.random() < 0.8 else f'"{person} {index}"'
                address = f"{local}@{country}.com"
                if any(user["address"] == address for user in users):
                    continue
                user: dict[str, Any] = {"address": address, "password": "pw", "host": host}
                if rng.random() < 0.7:
                    user["check_mail_every"] = rng.choice(["5min", "10min", "30min"])
                users.append(user)
    duration = rng.choice([3600, 5400, 7200])
    addresses = [user["address"] for user in users]
    messages = []
    for _ in range(rng.randint(1, 6)):
        sender = rng.choice(addresses)
        others = [a for a in addresses if a != sender] or [sender]
        to = rng.sample(others, min(len(others), rng.randint(1, 3)))
        if rng.random() < 0.2:
            to.append(f"nobody@{rng.choice(countries)}.com")
        message: dict[str, Any] = {
            "at": rng.randrange(0, duration // 2),
            "from": sender,
            "to": to,
            "subject": rng.choice(["hi", "Grüße", "Re: the plan", ""]),
            "body": rng.choice(["short", "line one\nline two\n.\n..dots", "x" * 2000]),
        }
        if rng.random() < 0.3:
            message["attachments"] = [{"kind": "document", "size": rng.choice(["5KB", "300KB"])}]
        messages.append(message)
    faults: list[dict[str, Any]] = []
    servers = [f"{country}-mail" for country in countries]
    used: set[tuple[str, ...]] = set()
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["link", "node", "service", "random", "reply", "reply"])
        start = rng.randrange(0, duration // 2)
        length = rng.choice([None, 60, 600, 1800])
        if kind == "link":
            pair = rng.choice(links)["between"]
            if ("link", *sorted(pair)) not in used:
                used.add(("link", *sorted(pair)))
                faults.append({"link": pair, "down_at": start, "down_for": length})
        elif kind == "node":
            target = rng.choice([*servers, "core", *hosts])
            if ("node", target) not in used:
                used.add(("node", target))
                faults.append({"node": target, "crash_at": start, "restart_after": length})
        elif kind == "service":
            target = rng.choice(servers)
            port = rng.choice([25, 587, 110])
            if ("service", target, str(port)) not in used:
                used.add(("service", target, str(port)))
                service = {"node": target, "port": port}
                faults.append({"service": service, "stop_at": start, "stop_for": length})
        elif kind == "random":
            pair = rng.choice(links)["between"]
            faults.append({"random": "link", "target": pair, "mtbf": "20min", "mttr": "2min"})
        else:
            command = rng.choice(["CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot"])
            step = "DOT" if command == "dot" else command
            code = rng.choice(sorted(c for c in COMMAND_REPLIES[step] if c >= 400))
            reply: dict[str, Any] = {
                "server": rng.choice(servers),
                "port": rng.choice([25, 587]),
                "command": command,
                "code": code,
                "probability": rng.choice([1.0, 0.5, 0.2]),
            }
            if code < 500 and rng.random() < 0.5:
                reply["first_attempt_only"] = True
            faults.append({"reply": reply})
    world: dict[str, Any] = {
        "name": f"random world {number}",
        "seed": number,
        "duration": duration,
        "nodes": nodes,
        "links": links,
        "servers": {"retry": {"give_up_after": duration // 2}},
        "users": users,
        "messages": messages,
        "faults": faults,
    }
    if rng.random() < 0.4:
        world["traffic"] = [{"rate": rng.choice(["4/h", "10/h"]), "size": "2KB"}]
    return dump(world)


def random_worlds(seed: int = 15, count: int = 40) -> list[str]:
    """``count`` random valid worlds with faults, the same for the same seed."""
    rng = random.Random(seed)
    return [random_world(rng, number) for number in range(count)]


if __name__ == "__main__":  # pragma: no cover - a tool for reading the corpora
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(mutants()):
        (folder / f"mutant-{index:03}.yaml").write_text(text, encoding="utf-8")
    for index, text in enumerate(random_worlds()):
        (folder / f"world-{index:02}.yaml").write_text(text, encoding="utf-8")
    print(f"wrote {len(mutants())} mutants and {len(random_worlds())} worlds to {folder}/")
