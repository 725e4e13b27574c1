"""A mail client in the style of the textbook's socket assignment, that mailsim grade passes.

Usage: python examples/student_client.py HOST PORT    (or SMTP_HOST / SMTP_PORT set)

It reads the message from MAIL_FILE, the sender from MAIL_FROM and the recipients from MAIL_TO
(comma-separated), as ``mailsim grade`` provides them, and speaks SMTP over a plain socket:
it reads every reply whole before the next command, checks each reply code, doubles a leading
dot, sends CRLF line ends, uses STARTTLS when offered (trusting SMTP_CAFILE), and always QUITs.
Exit status: 0 delivered to every recipient, 1 not delivered to some, 2 the server refused.
"""

import os
import socket
import ssl
import sys


def read_reply(conn):
    """Read one whole reply (all lines of a multi-line one); return (code, lines)."""
    lines = []
    while True:
        line = conn.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        text = line.decode("ascii", "replace").rstrip("\r\n")
        lines.append(text)
        print("S:", text)
        if len(text) < 4 or text[3] != "-":  # "250 " ends the reply, "250-" goes on
            return int(text[:3]), lines


def command(sock, conn, line):
    """Send one command line and read its whole reply."""
    print("C:", line)
    sock.sendall(line.encode("ascii") + b"\r\n")
    return read_reply(conn)


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SMTP_HOST", "127.0.0.1")
    port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SMTP_PORT", "2525"))
    sender = os.environ.get("MAIL_FROM", "james@india.com")
    recipients = [a for a in os.environ.get("MAIL_TO", "steve@usa.com").split(",") if a]
    with open(os.environ["MAIL_FILE"], encoding="ascii") as file:
        text = file.read()

    sock = socket.create_connection((host, port), timeout=30)
    conn = sock.makefile("rb")
    code, _ = read_reply(conn)
    if code != 220:
        command(sock, conn, "QUIT")
        return 2
    code, lines = command(sock, conn, "EHLO student.example")
    cafile = os.environ.get("SMTP_CAFILE")
    if code == 250 and cafile and any(line[4:].upper() == "STARTTLS" for line in lines):
        code, _ = command(sock, conn, "STARTTLS")
        if code == 220:
            context = ssl.create_default_context(cafile=cafile)
            sock = context.wrap_socket(sock, server_hostname=host)
            conn = sock.makefile("rb")
            code, _ = command(sock, conn, "EHLO student.example")  # RFC 3207: EHLO again
    if code != 250:
        code, _ = command(sock, conn, "HELO student.example")
    if code != 250:
        command(sock, conn, "QUIT")
        return 2
    code, _ = command(sock, conn, f"MAIL FROM:<{sender}>")
    if code == 421:
        return 2  # the server is closing; no QUIT (RFC 5321 3.8)
    if code != 250:
        command(sock, conn, "QUIT")
        return 2
    accepted = []
    for address in recipients:
        code, _ = command(sock, conn, f"RCPT TO:<{address}>")
        if code == 421:
            return 2
        if code in (250, 251):
            accepted.append(address)
    if not accepted:
        command(sock, conn, "QUIT")
        return 2
    code, _ = command(sock, conn, "DATA")
    if code != 354:
        if code != 421:
            command(sock, conn, "QUIT")
        return 2
    body = ""
    for line in text.replace("\r\n", "\n").split("\n")[:-1]:
        body += ("." + line if line.startswith(".") else line) + "\r\n"  # dot-stuffing
    print(f"C: [message: {body.count(chr(10))} lines]")
    sock.sendall(body.encode("ascii") + b".\r\n")
    code, _ = read_reply(conn)
    if code != 421:
        command(sock, conn, "QUIT")
    sock.close()
    return 0 if code == 250 and len(accepted) == len(recipients) else 1


if __name__ == "__main__":
    sys.exit(main())
