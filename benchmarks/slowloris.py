"""A bounded slowloris and a header flood against a local proxy; fds and RSS before/after.

Starts `variant-proxy serve` on a free loopback port (its backend is a closed
port: only /health is asked for), then:

1. **slowloris**: opens `--connections` sockets (default 300) that send a request
   head one header line at a time and never finish it, for `--seconds` (default
   `header_timeout` + 3). The proxy should close them after `server.header_timeout`
   (408) and give the file descriptors back.
2. **header flood**: `--floods` clients (default 4) each send a header of
   `--flood-mb` MB (default 64) to /health and /v1/models while another client
   asks /health in a loop; the flood should get 431 early and the other client
   should never wait long.

Everything stays on 127.0.0.1 and is bounded in count and time. Prints the proxy's
open fds and RSS before, during and after each part, and the worst /health
latency seen during the flood.

Run: .venv/bin/python benchmarks/slowloris.py [--connections N] [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import yaml

VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_proxy(tmp: Path, header_timeout: float) -> tuple[subprocess.Popen[bytes], str, int]:
    cfg = {
        "server": {
            "health_interval": 3600,
            "watch_config": False,
            "header_timeout": header_timeout,
        },
        "backends": {"main": {"kind": "openai", "url": f"http://127.0.0.1:{free_port()}"}},
        "variants": {"v": {"backend": "main", "model": "m"}},
        "routes": {"default": "v"},
    }
    path = tmp / "router.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "variant-proxy"),
            *("serve", "--config", str(path), "--port", str(port), "--log-level", "error"),
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the proxy did not start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, port
        time.sleep(0.05)


def show(label: str, proc: psutil.Process) -> None:
    rss = proc.memory_info().rss / MIB
    print(f"  {label:<28} fds {proc.num_fds():>5}   rss {rss:7.1f} MiB", flush=True)


def slowloris(port: int, proc: psutil.Process, count: int, seconds: float) -> None:
    print(f"slowloris: {count} connections trickling a head for {seconds:g} s")
    show("before", proc)
    socks: list[socket.socket] = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    show("connected", proc)
    closed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.5)
    for sock in socks:
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
            closed += data == b"" or b" 408 " in data
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    print(f"  closed by the proxy: {closed} of {count}")
    time.sleep(0.5)
    show("after", proc)


def flood(port: int, url: str, proc: psutil.Process, floods: int, size_mb: int) -> None:
    print(f"header flood: {floods} clients x {size_mb} MB header, a /health client alongside")
    show("before", proc)
    times: list[float] = []
    stop = threading.Event()

    def other() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                client.get(url + "/health")
                times.append(time.monotonic() - started)
                time.sleep(0.01)

    def one(path: str, out: list[bytes]) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".encode())
            block = b"a" * MIB
            with contextlib.suppress(OSError):
                for _ in range(size_mb):
                    sock.sendall(block)
            with contextlib.suppress(OSError):
                out.append(sock.recv(64)[:12])

    watcher = threading.Thread(target=other)
    watcher.start()
    answers: list[bytes] = []
    threads = [
        threading.Thread(target=one, args=(("/health", "/v1/models")[i % 2], answers))
        for i in range(floods)
    ]
    for thread in threads:
        thread.start()
    show("during", proc)
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    print(f"  flood answers: {sorted(set(answers))}")
    print(f"  /health alongside: {len(times)} answers, worst {max(times or [0]) * 1000:.0f} ms")
    time.sleep(0.5)
    show("after", proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--header-timeout", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--floods", type=int, default=4)
    parser.add_argument("--flood-mb", type=int, default=64)
    args = parser.parse_args()
    count = min(args.connections, 2000)  # bounded: this is a check, not an attack tool
    seconds = min(args.seconds or args.header_timeout + 3, 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, port = start_proxy(Path(tmp), args.header_timeout)
        try:
            process = psutil.Process(proc.pid)
            slowloris(port, process, count, seconds)
            flood(port, url, process, min(args.floods, 16), min(args.flood_mb, 256))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
