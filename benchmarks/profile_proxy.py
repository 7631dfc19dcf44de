"""Profile the proxy under load with py-spy and print where its CPU goes.

Starts the fast upstream and `variant-proxy serve` (as `overhead.py` does),
drives a closed-loop load at the proxy, samples the proxy's stacks with py-spy
(install it into the venv for this: `.venv/bin/pip install py-spy`; it is not
a project dependency), and prints the functions with the most samples, by self
time and inclusive time, with file paths shortened.

Run: .venv/bin/python benchmarks/profile_proxy.py [--stream] [--seconds 10] [--raw OUT]

`--serve-module` profiles an alternative server entry point instead of the
`variant-proxy` script, e.g. to measure a change before making it.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402


def _short(frame: str) -> str:
    m = re.match(r"(.*) \((.*?):(\d+)\)$", frame)
    if not m:
        return frame
    path = re.sub(r".*site-packages/", "", m.group(2))
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    path = re.sub(rf"^{re.escape(str(h.ROOT))}/", "", path)
    return f"{path}:{m.group(1)}"


def summarise(raw: Path, top: int) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed-stack output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples (busy only)", "", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top * 2)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="50-chunk streams instead of JSON")
    parser.add_argument("--large", action="store_true", help="~128 KB request bodies")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--rate", type=float, default=None, help="open loop at this rate")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's collapsed stacks")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    placement = h.Placement.choose(True)
    raw = args.raw or Path(tempfile.mkdtemp(prefix="vp-prof-")) / "stacks.txt"
    spec: dict[str, object] = {
        "duration": args.seconds,
        "warmup": 0.5,
        "conns": args.conns,
        "stream": args.stream,
        "large": args.large,
    }
    spec.update({"mode": "open", "rate": args.rate} if args.rate else {"mode": "closed"})
    with (
        h.fast_upstream(placement.others) as up,
        h.proxy(up, placement.proxy, args.log_level) as px,
    ):
        sampler = subprocess.Popen(
            [spy, "record", "-p", str(px.proc.pid), "-r", "100", "-d", str(int(args.seconds))]
            + ["--format", "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        cpu0 = px.cpu_seconds()
        run = h.run_load(px.url, spec, cpus=placement.others)
        cpu = px.cpu_seconds() - cpu0
        sampler.wait(60)
    n = run["completed"] + run["warmup_completed"]
    print(
        f"{run['completed'] / run['wall_s']:.0f} req/s, {1000 * cpu / max(1, n):.2f} proxy CPU s "
        f"per 1,000 requests (py-spy pauses the proxy to sample: expect a few % less than "
        f"overhead.py), errors {run['errors']}"
    )
    print(summarise(raw, args.top))
    print(f"\ncollapsed stacks: {raw}")


if __name__ == "__main__":
    main()
