"""Real local servers that keep the alerts they receive: a webhook, and an SMTP server.

The SMTP server speaks the part of RFC 5321 a client needs to deliver plain mail (EHLO/HELO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT); no TLS, which the `ccg_alerts` connection turns off with
`disable_tls`.
"""

from __future__ import annotations

import email
import http.server
import json
import socketserver
import threading
from dataclasses import dataclass, field
from email.message import Message


@dataclass
class SmtpSink:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    port: int = 0

    def connection_extra(self, to: str = "oncall@ccg.example") -> dict[str, object]:
        return {
            "to": to,
            "from_email": "airflow@ccg.example",
            "disable_tls": True,
            "disable_ssl": True,
            "retry_limit": 0,
            "timeout": 10,
        }


def start_smtp_sink() -> tuple[SmtpSink, socketserver.ThreadingTCPServer]:
    sink = SmtpSink()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            sender, recipients = "", []
            self.reply("220 sink ESMTP")
            while line := self.rfile.readline():
                command = line.decode(errors="replace").strip()
                verb = command[:4].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 sink")
                elif verb == "MAIL":
                    sender, recipients = command.partition(":")[2].strip(" <>"), []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command.partition(":")[2].strip(" <>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    body = []
                    while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        body.append(data[1:] if data.startswith(b"..") else data)
                    sink.messages.append(email.message_from_bytes(b"".join(body)))
                    sink.envelopes.append((sender, recipients))
                    self.reply("250 queued")
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not implemented")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return sink, server


def start_webhook(received: list[dict]) -> http.server.HTTPServer:
    """A webhook on a loopback port that appends each JSON body posted to it to `received`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
