"""mailsim: a discrete-event simulator and teaching environment for Internet e-mail.

The package is layered (see DESIGN.md of the project): ``protocol`` holds the pure SMTP and POP3
state machines, ``net`` the simulated network, ``mail`` messages, queues and retry policies,
``nodes`` the simulated mail servers and user agents, ``trace`` the single record of what happened,
``scenario`` the YAML language, ``plot`` the figures, and ``live`` the same machines on real sockets.

Importing ``mailsim`` is cheap: heavy libraries load only when the part that needs them is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
