#!/usr/bin/env python3
"""A throwaway SMTP server for the email tests (tests/api/email.rs), on Debian's python3-aiosmtpd.

    smtp_server.py DIR PORT [--user USER --password PASSWORD] [--starttls CERT KEY | --tls CERT KEY]

Listens on 127.0.0.1:PORT, prints "READY" once it accepts connections, and saves every message
it accepts as DIR/NNNN.json: {"mail_from", "rcpt_tos", "from", "to", "subject", "body" (the text
part, transfer encoding undone), "authenticated", "tls"}. With --user, AUTH (PLAIN, LOGIN) is
required and only that user and password pass; with --starttls, STARTTLS is offered and
required; with --tls, the listener speaks TLS from the first byte. Stops at EOF on stdin.
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Save:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": part.get_content() if part is not None else "",
            "authenticated": bool(session.authenticated),
            # session.ssl is set after STARTTLS only; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        path = os.path.join(self.directory, f"{self.count:04d}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--tls", nargs=2)
    args = parser.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == args.password.encode()
        )
        return AuthResult(success=ok, handled=False)

    kwargs = {}
    if args.user:
        kwargs.update(authenticator=authenticator, auth_required=True)
        # Over plain SMTP only because the tests listen on loopback.
        kwargs.update(auth_require_tls=bool(args.starttls))
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        kwargs.update(tls_context=context, require_starttls=True)
    server_kwargs = {}
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
        kwargs.update(ssl_context=context)
    controller = Controller(Save(args.directory), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
