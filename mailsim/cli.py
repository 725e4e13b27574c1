"""The ``mailsim`` command.

Start-up is kept fast: this module imports only click; each subcommand imports what it needs
(simpy, pandas, matplotlib, asyncio servers) inside its body.
"""

from __future__ import annotations

import click

from mailsim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailsim")
def main() -> None:
    """mailsim: watch Internet e-mail move, from SMTP dialogue to queues, retries and bounces."""


if __name__ == "__main__":  # pragma: no cover
    main()
