"""The live layer: mailsim's SMTP and POP3 machines on real sockets, with Maildir storage.

- :mod:`mailsim.live.server`: the asyncio server (``mailsim serve``): SMTP (MX role), submission
  with AUTH, and POP3 over one Maildir store; :class:`ServerThread` runs it in the background.
- :mod:`mailsim.live.storage`: Maildirs written with fsync, and the POP3 maildrop view of them.
- :mod:`mailsim.live.client`: our SMTP client machine on a socket (``mailsim send``).
- :mod:`mailsim.live.cli`: the two click commands.

Nothing is imported here, so ``mailsim serve --help`` loads only click; import the submodules.
"""
