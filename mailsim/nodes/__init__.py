"""SimPy processes that drive the pure protocol machines over the simulated network.

- :mod:`mailsim.nodes.mailserver`: a mail server (submission with AUTH, MX service, outgoing queue,
  delivery jobs, POP3): the SimPy adapter of the mail-server core (:mod:`mailsim.mail.server`).
- :mod:`mailsim.nodes.useragent`: a user agent that submits mail and checks its mailbox.
- :mod:`mailsim.nodes.telnet`: a scripted session that types lines at a server.
- :mod:`mailsim.nodes.world`: the world that holds them, the network, DNS and the trace.
"""
