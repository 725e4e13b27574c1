"""A client built on the standard library's smtplib, as many students would write it."""

import os
import smtplib
import ssl
import sys

host, port = sys.argv[1], int(sys.argv[2])
# Read as text: smtplib turns the LF line ends of a str into CRLF (it sends bytes as they are).
with open(os.environ["MAIL_FILE"], encoding="ascii") as file:
    message = file.read()
try:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.ehlo()
        cafile = os.environ.get("SMTP_CAFILE")
        if cafile and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            smtp.ehlo()
        smtp.sendmail(os.environ["MAIL_FROM"], os.environ["MAIL_TO"].split(","), message)
except smtplib.SMTPException as error:
    print("not sent:", error)
    sys.exit(1)
