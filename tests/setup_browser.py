"""Make sure the browser tests have Debian's Chromium at /usr/bin/chromium.

Run by ``make test`` as ``python -m tests.setup_browser``. The browser tests drive this
system Chromium through Playwright (never ``playwright install``: no browser downloads
outside the package manager). Idempotent: when the executable is already there it
returns at once without touching apt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE = "chromium"


def _apt(*args: str) -> None:
    """Run apt-get non-interactively, as root directly or through sudo when available."""
    cmd = ["apt-get", "-y", "-q", *args]
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise SystemExit(
                f"setup_browser: {CHROMIUM} is missing and apt-get needs root "
                f"(run `sudo apt-get install {PACKAGE}` once)"
            )
        cmd = [sudo, "-n", *cmd]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(cmd, check=True, env=env)


def ensure_chromium() -> Path:
    """Return the Chromium path, installing the Debian package only when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise SystemExit(f"setup_browser: {CHROMIUM} is missing and apt-get is not available")
    _apt("update")
    _apt("install", "--no-install-recommends", PACKAGE)
    if not CHROMIUM.exists():
        raise SystemExit(f"setup_browser: installed {PACKAGE} but {CHROMIUM} is still missing")
    return CHROMIUM


def main() -> int:
    path = ensure_chromium()
    print(f"setup_browser: using {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
