"""A stand-in for llama-server run as a managed backend, for swapping tests (stdlib only).

    python fake_llama.py --port 8123 --name a [--load-seconds 2] [--rss-mb 60]
                         [--chunks 5 --chunk-delay 0.2] [--tag TEXT]

Speaks llama-server's wire format for what the proxy uses: `GET /health` answers
503 `{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}`
for `--load-seconds` after start (the model loading), then 200 `{"status": "ok"}`;
`GET /v1/models`; `POST /v1/chat/completions` and `/v1/completions`, plain JSON or, with
`"stream": true`, `text/event-stream` chunks (`data: {...}` of `chat.completion.chunk`,
a last chunk with `finish_reason`, then `data: [DONE]`), sent chunked over HTTP/1.1 with
`--chunk-delay` seconds between chunks. The answer's text names the server (`--name`)
and its pid, so a test knows who answered. `--rss-mb` allocates and touches that much
memory at start, so the resident size the proxy measures is real.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--load-seconds", type=float, default=0.0)
    parser.add_argument("--rss-mb", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    #: unused: lets a test find its own servers among the machine's processes
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    ballast = bytearray(args.rss_mb * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touch every page: resident, not just reserved
    started = time.monotonic()
    pid = os.getpid()
    print(f"fake llama {args.name} pid {pid} on port {args.port}", flush=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _loading(self) -> bool:
            return time.monotonic() - started < args.load_seconds

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                if self._loading():
                    msg = {"code": 503, "message": "Loading model", "type": "unavailable_error"}
                    self._send(503, {"error": msg})
                else:
                    self._send(200, {"status": "ok"})
            elif self.path in ("/v1/models", "/models"):
                model = {"id": args.name, "object": "model", "created": 0, "owned_by": "llamacpp"}
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._send(404, {"error": {"code": 404, "message": "File Not Found"}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            chat = self.path == "/v1/chat/completions"
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self._send(404, {"error": {"code": 404, "message": "File Not Found"}})
                return
            text = f"{args.name} pid {pid}"
            if body.get("stream"):
                self._stream(chat, text)
            else:
                self._send(200, self._whole(chat, text))

        def _whole(self, chat: bool, text: str) -> dict[str, Any]:
            usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
            if chat:
                message = {"role": "assistant", "content": text}
                choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
                kind = "chat.completion"
            else:
                choice = {"index": 0, "text": text, "finish_reason": "stop"}
                kind = "text_completion"
            return {
                "id": "chatcmpl-fake",
                "object": kind,
                "created": int(time.time()),
                "model": args.name,
                "choices": [choice],
                "usage": usage,
            }

        def _chunk(self, chat: bool, content: str | None, finish: str | None) -> bytes:
            if chat:
                delta = {} if content is None else {"content": content}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
                kind = "chat.completion.chunk"
            else:
                choice = {"index": 0, "text": content or "", "finish_reason": finish}
                kind = "text_completion"
            event = {
                "id": "chatcmpl-fake",
                "object": kind,
                "created": int(time.time()),
                "model": args.name,
                "choices": [choice],
            }
            return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, chat: bool, text: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [text] + [f" {i}" for i in range(1, args.chunks)]
            for piece in pieces:
                self._write_chunk(self._chunk(chat, piece, None))
                time.sleep(args.chunk_delay)
            self._write_chunk(self._chunk(chat, None, "stop"))
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, format: str, *a: object) -> None:
            print(format % a, flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
