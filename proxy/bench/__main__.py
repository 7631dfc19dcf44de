"""`python -m proxy.bench ...`: the `bench` command without the rest of the CLI."""

from __future__ import annotations

import argparse
import sys

from ..cli.bench import register_cli, run_cli

parser = argparse.ArgumentParser(prog="python -m proxy.bench")
register_cli(parser.add_subparsers(dest="command", required=True))
raise SystemExit(run_cli(parser.parse_args(["bench", *sys.argv[1:]])))
