"""Entry of the dashboard's server process: ``python -m dashboard.launch <streamlit args>``.

It asks the kernel to send SIGTERM when the parent (``runway-costs dashboard``/``up``/
``demo``) dies, even by SIGKILL, so no server outlives its command; then it runs
Streamlit's own CLI in this process. Doing this here rather than in a ``preexec_fn`` keeps
the fork safe while the parent has threads (the demo's sandbox runs in one).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_ENV = "RUNWAY_COSTS_DASHBOARD_PARENT"


def die_with_parent() -> None:
    """SIGTERM on the parent's death (Linux); exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:  # another libc: the parent's own stop() still applies
            return
    expected = os.environ.get(PARENT_ENV)
    if expected and os.getppid() != int(expected):  # it died before prctl took effect
        sys.exit(0)


def main() -> None:
    die_with_parent()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
