"""Sans-IO SMTP (RFC 5321) and POP3 (RFC 1939) state machines.

Bytes go in with ``receive_data()``, events come out of ``next_event()``, and ``send()`` /
``data_to_send()`` give the bytes to write. Nothing here touches a socket, a clock or a simulator:
the SimPy nodes and the asyncio live servers are thin adapters over the very same classes.
This package imports only the standard library (a test proves it).
"""
