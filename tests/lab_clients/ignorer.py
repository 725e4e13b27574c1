"""A careless client for the grader's tests: reads each reply, then ignores what it said."""

import contextlib
import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
with open(os.environ["MAIL_FILE"], encoding="ascii") as file:
    text = file.read()
sock = socket.create_connection((host, port), timeout=10)
conn = sock.makefile("rb")


def reply():
    while True:
        line = conn.readline()
        if not line or line[3:4] != b"-":
            return


def send(line):
    with contextlib.suppress(OSError):  # it does not care that the server hung up
        sock.sendall(line.encode("ascii") + b"\r\n")
    reply()


reply()
send("EHLO ignorer.example")
send(f"MAIL FROM:<{os.environ['MAIL_FROM']}>")
for address in os.environ["MAIL_TO"].split(","):
    send(f"RCPT TO:<{address}>")
send("DATA")
body = "".join(
    ("." + line if line.startswith(".") else line) + "\r\n" for line in text.split("\n")[:-1]
)
send(body + ".")
send("QUIT")
