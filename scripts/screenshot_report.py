"""Screenshot a study's report.html in headless Chromium (a check that the figures render).

Usage::

    python scripts/screenshot_report.py runs/demo/report.html docs/report.png
    python scripts/screenshot_report.py REPORT PNG --width 1280 --height 2400 --budget-ms 15000

Chromium is found as ``$CHROMIUM``, ``chromium``, ``chromium-browser`` or
``google-chrome`` on the PATH (``apt-get install -y chromium``). It runs with
no network, no sandbox and a throw-away profile, and waits ``--budget-ms`` of
virtual time so plotly has drawn every figure. Exit code 2 when no browser is
found or the screenshot is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["count_drawn_plots", "find_chromium", "screenshot"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: Path,
    png: Path,
    *,
    width: int = 1280,
    height: int = 2400,
    budget_ms: int = 15000,
    browser: str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """Render ``html`` and write a ``width`` x ``height`` PNG to ``png``."""
    exe = browser or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: apt-get install -y chromium, or set $CHROMIUM")
    if not html.is_file():
        raise FileNotFoundError(f"{html} does not exist: run the study first")
    png.parent.mkdir(parents=True, exist_ok=True)
    _run_chromium(exe, html, budget_ms, timeout_s,
                  [f"--window-size={width},{height}", f"--screenshot={png.resolve()}"])  # fmt: skip
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot to {png}")
    return png


def _run_chromium(
    exe: str, html: Path, budget_ms: int, timeout_s: float, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *extra,
            html.resolve().as_uri(),
        ]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s)


def count_drawn_plots(
    html: Path, *, budget_ms: int = 15000, browser: str | None = None, timeout_s: float = 120.0
) -> tuple[int, int]:
    """(plots plotly.js drew, plot placeholders in the file), read from the page's DOM
    after its scripts ran: a placeholder plotly never filled stays empty."""
    exe = browser or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: apt-get install -y chromium, or set $CHROMIUM")
    total = html.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    dom = _run_chromium(exe, html, budget_ms, timeout_s, ["--dump-dom"]).stdout
    return dom.count('class="plot-container plotly"'), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--budget-ms", type=int, default=15000)
    args = parser.parse_args(argv)
    try:
        path = screenshot(
            args.html, args.png, width=args.width, height=args.height, budget_ms=args.budget_ms
        )
    except (FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    drawn, total = count_drawn_plots(args.html, budget_ms=args.budget_ms)
    print(f"{drawn} of {total} plots drawn")
    if drawn < total or total == 0:
        print(f"error: only {drawn} of {total} plots drew in {args.html}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
