#!/usr/bin/env python3
"""A small HTTP-mode function for the quick start.

The watchdog starts this once per replica and gives each process its own
port in $PORT; the process serves HTTP on 127.0.0.1:$PORT and is kept
running between calls, so a warm call costs one proxied request.

GET  /           -> a greeting naming the replica's pid
POST /anything   -> JSON with the method, path, query and the body's length
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the watchdog reuses connections

    def _reply(self, status, body, content_type):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        greeting = os.environ.get("GREETING", "Hello")
        self._reply(200, f"{greeting} from Python, pid {os.getpid()}\n", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        doc = {"method": self.command, "path": url.path, "query": url.query, "bytes": len(body)}
        self._reply(200, json.dumps(doc) + "\n", "application/json")

    do_PUT = do_POST
    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        # One line per call on stderr: the platform collects it as the function's log.
        print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
