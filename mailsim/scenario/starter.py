"""The commented starter scenario that ``mailsim new NAME`` writes.

It is the story of the seed tutorial (James in India mails Steve in the USA) with every section
explained, so a teacher can start from a file that already runs and change one thing at a time.
Optional sections are present but commented out. A test loads it, so it never drifts from the
language.
"""

from __future__ import annotations

import json

__all__ = ["STARTER_SCENARIO", "starter_scenario"]

#: The starter scenario as YAML text (its name line is replaced by :func:`starter_scenario`).
STARTER_SCENARIO = """\
# A mailsim scenario. The whole language is described in docs/scenario-language.md.
# Times and sizes are written as people write them: 120ms, 30s, 10min, 2h, 5d, 2MB, 10Mbps.
# A bare number of seconds works too (90 means 90 seconds).

name: James in India mails Steve in the USA
description: >
  James writes to Steve. His user agent submits the message to india-mail, which
  opens a TCP connection straight to usa-mail and hands it over with SMTP. Steve
  fetches it from his mailbox with POP3.
seed: 1            # the random seed: the same seed gives the same run, to the byte
duration: 2h       # how long the simulated world runs

# --- The machines -------------------------------------------------------------------------
# Each node has a name (used everywhere else) and a kind:
#   host        a computer where a user agent (a mail program) runs
#   router      passes packets on
#   mailserver  receives mail for its domains, queues and sends mail, keeps mailboxes
#   dns         a DNS server (optional: without one, mailsim adds a node called dns,
#               linked to every mail server, that knows every mail domain)
# site is just a label for the plots. ip is chosen for you unless you give one.
nodes:
  james-pc:   {kind: host, site: India}
  india-mail: {kind: mailserver, site: India, domains: [india.com]}
  router:     {kind: router, site: Ocean}
  usa-mail:   {kind: mailserver, site: USA, domains: [usa.com]}
  steve-pc:   {kind: host, site: USA}

# --- The wires ----------------------------------------------------------------------------
# latency is the one-way delay, bandwidth the speed in each direction. Optional: loss (the
# chance that a packet is lost, 0 to 1), jitter (random extra delay), mtu (packet size).
links:
  - {between: [james-pc, india-mail], latency: 2ms, bandwidth: 100Mbps}
  - {between: [india-mail, router], latency: 60ms, bandwidth: 20Mbps}
  - {between: [router, usa-mail], latency: 50ms, bandwidth: 20Mbps, loss: 0.001}
  - {between: [usa-mail, steve-pc], latency: 3ms, bandwidth: 100Mbps}

# --- The people ---------------------------------------------------------------------------
# Each user has a mailbox on the mail server of their domain, and a user agent on a host.
# With check_mail_every, the user agent fetches new mail with POP3 that often (else never).
users:
  - {address: james@india.com, password: grammar, host: james-pc, name: James}
  - {address: steve@usa.com, password: atlas, host: steve-pc, name: Steve,
     check_mail_every: 10min}

# --- The mail -----------------------------------------------------------------------------
# Each message is sent at a time counted from the start of the run (when "send" is clicked).
messages:
  - at: 1min
    from: james@india.com
    to: steve@usa.com
    subject: Books
    body: |
      Do you have a Grammar Book?
      What about Atlas?
  # - at: 5min
  #   from: james@india.com
  #   to: steve@usa.com
  #   subject: A photo of the library
  #   attachments: [{kind: photo, size: 2MB}]   # sent as 7-bit base64, about 37% larger

# --- Background mail (optional) -----------------------------------------------------------
# traffic:
#   - rate: 12/h                # messages per user per hour, at random times
#     size: {distribution: lognormal, median: 4KB, sigma: 1}
#     attachment_probability: 0.1

# --- Things that go wrong (optional) ------------------------------------------------------
# While the link is down, india-mail keeps the message in its queue and tries again later.
faults:
  - {link: [india-mail, router], down_at: 1min, down_for: 40min}
  # - {node: usa-mail, crash_at: 10min, restart_after: 1h}
  # - {service: {node: usa-mail, port: 25}, stop_at: 10min, stop_for: 30min}
  # - {random: link, target: [router, usa-mail], mtbf: 1d, mttr: 30min}
  # - {reply: {server: usa-mail, command: RCPT, code: 451, text: '4.7.1 Greylisted',
  #            first_attempt_only: true}}

# --- How every mail server behaves (optional; these are the defaults) ---------------------
# servers:
#   retry: {policy: fixed, interval: 30min, jitter: 10min, give_up_after: 5d}
#   replies: modern             # classic: the wording of the old tutorials
#   max_message_size: 10MB

# --- Typing at a server by hand, as with "telnet usa-mail 25" (optional) ------------------
# telnet:
#   - at: 30s
#     from: james-pc
#     to: usa-mail
#     port: 25
#     lines:                    # quote lines that contain ': ' or start with a quote
#       - HELO india.com
#       - 'MAIL FROM:<james@india.com>'
#       - 'RCPT TO:<steve@usa.com>'
#       - DATA
#       - Do you have a Grammar Book?
#       - .
#       - QUIT

# --- What to record (optional) ------------------------------------------------------------
# trace: {segments: false, pcap: false, data_lines: 20}
"""


def starter_scenario(name: str) -> str:
    """The starter scenario with its ``name:`` set to ``name`` (quoted as YAML needs)."""
    default = "name: James in India mails Steve in the USA\n"
    # A JSON string is a valid YAML double-quoted scalar, whatever ``name`` contains.
    return STARTER_SCENARIO.replace(default, f"name: {json.dumps(name)}\n", 1)
