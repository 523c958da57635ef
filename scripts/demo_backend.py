#!/usr/bin/env python3
"""A tiny HTTP backend for `make demo`: answers GET /health with "ok" on ADDRESS PORT.

Usage: demo_backend.py ADDRESS PORT   (ADDRESS IPv4 or IPv6, e.g. 127.0.0.21 8080 or ::1 8080)
"""
import http.server
import socket
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else b"meridian demo backend\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET


if len(sys.argv) != 3:
    sys.exit(__doc__)
Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
