"""A careless client for the grader's tests: every command in one write, before reading anything."""

import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
recipients = os.environ["MAIL_TO"].split(",")
with open(os.environ["MAIL_FILE"], encoding="ascii") as file:
    text = file.read()
body = "".join(
    ("." + line if line.startswith(".") else line) + "\r\n" for line in text.split("\n")[:-1]
)
blast = "EHLO blaster.example\r\n" + f"MAIL FROM:<{os.environ['MAIL_FROM']}>\r\n"
blast += "".join(f"RCPT TO:<{address}>\r\n" for address in recipients)
blast += "DATA\r\n" + body + ".\r\nQUIT\r\n"
sock = socket.create_connection((host, port), timeout=10)
sock.sendall(blast.encode("ascii"))
while sock.recv(4096):
    pass
