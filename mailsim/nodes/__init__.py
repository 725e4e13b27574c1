"""SimPy processes that drive the pure protocol machines over the simulated network.

- :mod:`mailsim.nodes.mailserver`: a mail server (submission with AUTH, MX service, outgoing queue,
  delivery agents, POP3), made of the protocol machines and the ``mail`` package.
- :mod:`mailsim.nodes.useragent`: a user agent that submits mail and checks its mailbox.
- :mod:`mailsim.nodes.telnet`: a scripted session that types lines at a server.
- :mod:`mailsim.nodes.world`: the world that holds them, the network, DNS and the trace.
"""
