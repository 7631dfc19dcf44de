"""How long one large request holds the proxy's event loop.

Starts the fast upstream and `variant-proxy serve` (model `auto`, so the classifier
runs), then for each body shape sends a ~30 MB chat request while another client asks
`/health` every 2 ms, and prints the large request's time and the worst `/health`
latency seen meanwhile: that worst latency is how long every other client waited
behind the large body (parse, classify, write out for the backend).

Shapes: one huge user message (a pasted log), many ordinary turns (a long agent
transcript), and a huge tool result after a short ask.

Run pinned (proxy on CPU 0, the rest on CPU 1):
    .venv/bin/python benchmarks/large_body.py [--mb 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx
import orjson
from _harness import Placement, fast_upstream, proxy


def bodies(mb: int) -> dict[str, bytes]:
    size = mb * 1024 * 1024
    line = "2026-12-02 10:00:01 ERROR worker-3 request failed: timeout after 30s\n"
    turn = "Please look at the parser again and tell me why it drops the last token. " * 200
    shapes = {
        "one huge message": {"messages": [{"role": "user", "content": line * (size // len(line))}]},
        "many turns": {
            "messages": [
                {"role": "user" if i % 2 == 0 else "assistant", "content": turn}
                for i in range(size // len(turn))
            ]
        },
        "huge tool result": {
            "messages": [
                {"role": "user", "content": "why does the test fail?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}]},  # noqa: E501
                {"role": "tool", "tool_call_id": "c1", "content": line * (size // len(line))},
            ]
        },
    }  # fmt: skip
    return {
        name: orjson.dumps({"model": "auto", "max_tokens": 8, **body})
        for name, body in shapes.items()
    }


def measure(url: str, body: bytes) -> tuple[float, float]:
    """(the large request's seconds, the worst /health latency meanwhile in seconds)."""
    worst = 0.0
    done = threading.Event()

    def ping() -> None:
        nonlocal worst
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                start = time.perf_counter()
                client.get(url + "/health")
                worst = max(worst, time.perf_counter() - start)
                time.sleep(0.002)

    pinger = threading.Thread(target=ping)
    pinger.start()
    time.sleep(0.2)
    start = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        answer = client.post(
            url + "/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
    took = time.perf_counter() - start
    time.sleep(0.2)
    done.set()
    pinger.join()
    answer.raise_for_status()
    return took, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    place = Placement.choose(pin=True)
    print(f"# {place.describe()}; bodies of ~{args.mb} MB, model auto")
    with fast_upstream(place.others) as upstream, proxy(upstream, place.proxy) as p:
        for name, body in bodies(args.mb).items():
            runs = [measure(p.url, body) for _ in range(args.repeat)]
            took = min(r[0] for r in runs)
            worst = min(r[1] for r in runs)
            print(
                f"{name:18s} {len(body) / 1e6:5.1f} MB  request {took * 1e3:7.1f} ms  "
                f"worst /health meanwhile {worst * 1e3:6.1f} ms (best of {args.repeat})"
            )


if __name__ == "__main__":
    main()
