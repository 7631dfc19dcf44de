"""A tiny stand-in for a model server, for supervisor tests (stdlib only).

    python fake_server.py --port 8123 [--unhealthy-for 1.5] [--exit-after 0.2 --exit-code 3]
                          [--spawn-child] [--ignore-sigterm] [--pidfile PATH]

``GET /health`` answers 503 ``{"error": {"code": 503, "message": "Loading model", ...}}``
for ``--unhealthy-for`` seconds after start, then 200 ``{"status": "ok"}``, like
llama-server. ``GET /v1/models`` lists one model. ``--spawn-child`` forks a sleeping child
in the same process group, to check that a whole group is reaped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unhealthy-for", type=float, default=0.0)
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args()

    started = time.monotonic()
    print(f"fake server pid {os.getpid()} starting on port {args.port}", flush=True)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.spawn_child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"child pid {child.pid}", flush=True)
        if args.pidfile:
            with open(args.pidfile, "w") as f:
                f.write(str(child.pid))
    if args.exit_after is not None:

        def die() -> None:
            time.sleep(args.exit_after)
            print("fake server: exiting on purpose (--exit-after)", flush=True)
            os._exit(args.exit_code)

        threading.Thread(target=die, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                if time.monotonic() - started < args.unhealthy_for:
                    msg = {"code": 503, "message": "Loading model", "type": "unavailable_error"}
                    self._send(503, {"error": msg})
                else:
                    self._send(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send(404, {"error": {"code": 404, "message": "not found"}})

        def log_message(self, format: str, *a: object) -> None:
            print(format % a, flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("fake server listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
