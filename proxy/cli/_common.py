"""What every sub-command shares: the `--config` option and how a bad config is reported.

Kept apart from `__init__` so the command modules import it without importing the
parser that imports them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from ..config import RouterConfig, load_config
from ..errors import ConfigError

__all__ = ["add_config", "load_or_report", "print_config_error"]


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="routing config YAML (default: $VARIANT_PROXY_CONFIG or config/router.yaml)",
    )


def print_config_error(exc: ConfigError, err: TextIO) -> None:
    """The file, then one line per issue, each naming its key."""
    print(f"error: invalid config {exc.source}", file=err)
    for issue in exc.issues:
        print(f"{issue}", file=err)


def load_or_report(path: Path, err: TextIO) -> RouterConfig | None:
    """The config at `path`, or None after printing why it is invalid."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print_config_error(exc, err)
        return None
