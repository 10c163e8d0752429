"""Release check: the wheel, installed outside the checkout, does the README's main jobs.

Run as ``python -m tests.release_check`` (``make release-check``; ``make test`` runs it after
pytest). Not a pytest module: it builds and installs the package the way a user gets it, so
nothing from the checkout (its ``data/`` folder, its ``.venv``, an editable install) can hide
a file missing from the wheel.

Steps, one line each:

1. copy the checkout's files (tracked and untracked-but-not-ignored, as in the work tree) to a
   temporary folder and build a wheel there with ``pip wheel --no-deps`` (build isolation: the
   project venv has neither ``wheel`` nor the ``setuptools>=68`` that pyproject asks for, and
   the isolated build takes a few seconds); building from a copy leaves no ``build/`` or
   ``*.egg-info`` behind in the checkout;
2. check the wheel's top-level entries are only ``runway_costs/`` and its ``.dist-info/``, and
   that the data files the package reads at run time are inside;
3. create a fresh venv outside the checkout and ``pip install`` the wheel into it (dependencies
   from the configured indexes; 30-60 s, most of the check's time), then ``pip check``;
4. from a temporary working folder, with ``RUNWAY_COSTS_NOW`` pinned and no other
   ``RUNWAY_COSTS_*`` variable: ``price`` the sample plan shipped inside the installed package,
   start ``sandbox``, ``collect`` its organizations through a TOML config, ``status``, and
   serve ``dashboard`` until its health endpoint answers ``ok``.

Exit 0 when every step passed, 1 (with the step, the reason and the tail of its output) on
the first failure. Every wait has a timeout and every process and folder is removed in
``finally``. ``--keep`` leaves the temporary folder in place for inspection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-24T12:00:00Z"
PACKAGE = "runway_costs"

# Files the installed package reads at run time; a wheel without one of them is broken.
WHEEL_DATA = [
    "runway_costs/data/rates.toml",
    "runway_costs/data/tiers.toml",
    "runway_costs/data/sample-plan.csv",
    "runway_costs/collector/schema.sql",
    "runway_costs/analytics/alerts_schema.sql",
    "runway_costs/dashboard/.streamlit/config.toml",
]

# Timeouts, in seconds.
BUILD_TIMEOUT = 300
VENV_TIMEOUT = 120
INSTALL_TIMEOUT = 900
COMMAND_TIMEOUT = 120
SANDBOX_START_TIMEOUT = 60
DASHBOARD_HEALTH_TIMEOUT = 90
STOP_TIMEOUT = 20
SIGNAL_GRACE = 0.5  # after a command says it is ready, before signalling it

TAIL_LINES = 40


class CheckFailed(Exception):
    """One step failed; ``detail`` is the output that explains it."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept)


def _say(line: str) -> None:
    print(f"release-check: {line}", flush=True)


def _run(
    cmd: Sequence[str | Path],
    *,
    what: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run to completion within ``timeout``; a non-zero exit is the caller's to judge."""
    argv = [str(c) for c in cmd]
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = _decode(exc.stdout) + _decode(exc.stderr)
        raise CheckFailed(f"{what}: no exit within {timeout:.0f} s", _tail(out)) from None


def _decode(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _expect_ok(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        raise CheckFailed(
            f"{what}: exit {proc.returncode} (expected 0)",
            _tail(proc.stdout + "\n" + proc.stderr),
        )
    return proc.stdout


# ---------------------------------------------------------------- build


def _checkout_files() -> list[Path]:
    """The work tree as a clone would have it, plus uncommitted edits and new files."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names = [n for n in out.decode().split("\0") if n]
    return [Path(n) for n in names if (REPO / n).is_file()]


def copy_source(dst: Path) -> None:
    files = _checkout_files()
    if files:
        for rel in files:
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target, follow_symlinks=False)
    else:  # not a git checkout: copy everything but environments, caches and build output
        shutil.copytree(
            REPO,
            dst,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "build",
                "dist",
                "*.egg-info",
                "__pycache__",
                "*.pyc",
                ".*_cache",
                ".hypothesis",
                "*.duckdb*",
                "*.lock",
            ),
        )
    if not (dst / "pyproject.toml").is_file():
        raise CheckFailed(f"copying the checkout to {dst}: no pyproject.toml there")


def build_wheel(src: Path, wheelhouse: Path, env: dict[str, str]) -> Path:
    proc = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheelhouse, src],
        what="pip wheel",
        cwd=src,
        env=env,
        timeout=BUILD_TIMEOUT,
    )
    _expect_ok(proc, "pip wheel")
    wheels = sorted(wheelhouse.glob(f"{PACKAGE}-*.whl"))
    if len(wheels) != 1:
        found = sorted(p.name for p in wheelhouse.iterdir())
        raise CheckFailed(f"pip wheel: expected one {PACKAGE}-*.whl, found {found}")
    return wheels[0]


def check_wheel(wheel: Path) -> int:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = sorted({n.split("/", 1)[0] + ("/" if "/" in n else "") for n in names})
    dist_info = [t for t in top if re.fullmatch(rf"{PACKAGE}-[^/]+\.dist-info/", t)]
    unexpected = [t for t in top if t != f"{PACKAGE}/" and t not in dist_info]
    if unexpected or len(dist_info) != 1 or f"{PACKAGE}/" not in top:
        raise CheckFailed(
            f"{wheel.name}: top-level entries must be exactly {PACKAGE}/ and one "
            f"{PACKAGE}-*.dist-info/; found {top}"
            + (f" (unexpected: {unexpected})" if unexpected else "")
        )
    missing = [n for n in WHEEL_DATA if n not in names]
    if missing:
        raise CheckFailed(f"{wheel.name}: package data missing from the wheel: {missing}")
    return len(names)


# ---------------------------------------------------------------- install


def make_venv(venv: Path, wheel: Path, env: dict[str, str]) -> None:
    """A venv without pip of its own (``ensurepip`` alone takes ~5 s): this interpreter's pip
    installs into it through ``--python``. ``--no-compile``: byte-compiling every dependency
    (pyarrow, streamlit, ...) is half of pip's CPU time and checks nothing here."""
    _expect_ok(
        _run(
            [sys.executable, "-m", "venv", "--without-pip", venv],
            what="python -m venv",
            cwd=venv.parent,
            env=env,
            timeout=VENV_TIMEOUT,
        ),
        "python -m venv",
    )
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
    _expect_ok(
        _run(
            [*pip, "install", "-q", "--no-compile", wheel],
            what="pip install",
            cwd=venv.parent,
            env=env,
            timeout=INSTALL_TIMEOUT,
        ),
        "pip install <wheel>",
    )
    _expect_ok(
        _run([*pip, "check"], what="pip check", cwd=venv.parent, env=env, timeout=60),
        "pip check",
    )


def installed_location(venv: Path, work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """(the imported package's folder, the sample plan inside it), as the new venv sees them."""
    code = (
        "import json, runway_costs\n"
        "from importlib.resources import files\n"
        "print(json.dumps({'package': runway_costs.__file__,\n"
        "  'plan': str(files('runway_costs').joinpath('data', 'sample-plan.csv'))}))\n"
    )
    proc = _run(
        [venv / "bin" / "python", "-c", code],
        what="locating the installed package",
        cwd=work,
        env=env,
        timeout=COMMAND_TIMEOUT,
    )
    found = json.loads(_expect_ok(proc, "locating the installed package").strip().splitlines()[-1])
    package = Path(found["package"]).resolve().parent
    plan = Path(found["plan"])
    if not package.is_relative_to(venv.resolve()):
        raise CheckFailed(f"the new venv imports {PACKAGE} from {package}, not from {venv}")
    if not plan.is_file():
        raise CheckFailed(f"the shipped sample plan is not installed: {plan}")
    return package, plan


# ---------------------------------------------------------------- background processes


class Background:
    """A long-running command in its own process group; stdout read by a thread."""

    def __init__(
        self, argv: Sequence[str | Path], *, what: str, cwd: Path, env: dict[str, str], log: Path
    ) -> None:
        self.what = what
        self.log = log
        self._stderr: IO[bytes] = log.open("wb")
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._stdout_seen: list[str] = []
        self._stopped = False
        self._stop_code: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # keeps draining, so the child never blocks on a full pipe
            line = raw.decode(errors="replace")
            self._stdout_seen.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def output(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        err = self.log.read_text(errors="replace") if self.log.exists() else ""
        return _tail("".join(self._stdout_seen) + "\n" + err)

    def first_line(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed(
                f"{self.what}: printed nothing within {timeout:.0f} s", self.output()
            ) from None
        if line is None:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
            raise CheckFailed(f"{self.what}: exited {code} before printing a line", self.output())
        return line

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The next stdout line containing ``text`` (earlier lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise CheckFailed(
                    f"{self.what}: no line with {text!r} within {timeout:.0f} s", self.output()
                ) from None
            if line is None:
                raise CheckFailed(
                    f"{self.what}: output ended before a line with {text!r}", self.output()
                )
            if text in line:
                return line

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL whatever of its process group is left. Returns the exit
        code when the process stopped on SIGTERM alone, None when it had to be killed."""
        if self._stopped:
            return self._stop_code
        code: int | None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
        else:
            code = self.proc.returncode
        if _group_alive(self.proc.pid):
            deadline = time.monotonic() + 5
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._reader.join(timeout=5)
        self._stderr.close()
        self._stopped, self._stop_code = True, code
        return code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


# ---------------------------------------------------------------- the product's commands


def check_price(cli: Path, plan: Path, work: Path, env: dict[str, str]) -> str:
    out = _expect_ok(
        _run([cli, "price", plan], what="runway-costs price", cwd=work, env=env, timeout=120),
        "runway-costs price",
    )
    total = re.search(r"^Total: .*credits.*$", out, re.MULTILINE)
    if total is None:
        raise CheckFailed("runway-costs price: no 'Total: ... credits' line", _tail(out))
    return total.group(0).strip()


def write_config(path: Path, base_url: str, orgs: list[dict[str, object]]) -> dict[str, str]:
    """A TOML config naming each org's key variable; returns those variables."""
    keys: dict[str, str] = {}
    parts = ["# written by tests/release_check.py"]
    for i, org in enumerate(orgs):
        var = f"RELEASE_CHECK_KEY_{i}"
        keys[var] = str(org["api_key"])
        parts.append(
            "[[orgs]]\n"
            f"name = {json.dumps(str(org['name']))}\n"
            f"api_key_env = {json.dumps(var)}\n"
            f"base_url = {json.dumps(base_url)}"
        )
    path.write_text("\n\n".join(parts) + "\n")
    return keys


def check_sandbox_collect_status(
    cli: Path, work: Path, env: dict[str, str], procs: list[Background]
) -> tuple[Path, list[str]]:
    sandbox = Background(
        [cli, "sandbox", "--now", NOW],
        what="runway-costs sandbox",
        cwd=work,
        env=env,
        log=work / "sandbox.log",
    )
    procs.append(sandbox)
    line = sandbox.first_line(SANDBOX_START_TIMEOUT)
    try:
        info = json.loads(line)
        base_url = str(info["base_url"])
        orgs = list(info["orgs"])
        names = [str(o["name"]) for o in orgs]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckFailed(f"runway-costs sandbox: bad first line ({exc}): {line!r}") from None
    if not names:
        raise CheckFailed(f"runway-costs sandbox: no organizations in {line!r}")
    _say(f"ok   sandbox at {base_url} with {len(names)} orgs: {', '.join(names)}")

    config = work / "release-check.toml"
    keys = write_config(config, base_url, orgs)
    db = work / "r.duckdb"
    out = _expect_ok(
        _run(
            [cli, "collect", "--config", config, "--db", db],
            what="runway-costs collect",
            cwd=work,
            env={**env, **keys},
            timeout=COMMAND_TIMEOUT,
        ),
        "runway-costs collect",
    )
    if not db.is_file():
        raise CheckFailed(f"runway-costs collect: exit 0 but no database at {db}", _tail(out))
    _say(f"ok   collect --config --db: exit 0, {db.stat().st_size:,} bytes written")

    out = _expect_ok(
        _run(
            [cli, "status", "--db", db],
            what="runway-costs status",
            cwd=work,
            env=env,
            timeout=COMMAND_TIMEOUT,
        ),
        "runway-costs status",
    )
    missing = [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", out)]
    if missing:
        raise CheckFailed(f"runway-costs status: does not mention {missing}", _tail(out))
    _say(f"ok   status --db: exit 0, mentions {', '.join(names)}")

    code = sandbox.stop()
    if code is None:
        raise CheckFailed("runway-costs sandbox: did not stop on SIGTERM", sandbox.output())
    return db, names


def check_dashboard(
    cli: Path, db: Path, work: Path, env: dict[str, str], procs: list[Background]
) -> str:
    for attempt in range(1, 4):  # a free port can be taken between the probe and the bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}/_stcore/health"
        dash = Background(
            [cli, "dashboard", "--db", db, "--port", str(port)],
            what="runway-costs dashboard",
            cwd=work,
            env=env,
            log=work / f"dashboard-{attempt}.log",
        )
        procs.append(dash)
        start = time.monotonic()
        deadline = start + DASHBOARD_HEALTH_TIMEOUT
        answer = None
        while time.monotonic() < deadline:
            answer = _health(url)
            if answer == "ok":
                break
            if dash.proc.poll() is not None:
                break
            time.sleep(0.25)
        if answer == "ok":
            waited = time.monotonic() - start
            # Streamlit answers its health check a moment before the command prints its URL
            # and installs its SIGTERM handler; a SIGTERM in between kills it with -15.
            # So wait for that line (and a little more) before asking it to stop.
            dash.wait_for_line("dashboard:", timeout=SANDBOX_START_TIMEOUT)
            time.sleep(SIGNAL_GRACE)
            code = dash.stop()
            if code is None:
                raise CheckFailed("runway-costs dashboard: did not stop on SIGTERM", dash.output())
            if code != 0:
                raise CheckFailed(
                    f"runway-costs dashboard: exit {code} after SIGTERM (expected 0)",
                    dash.output(),
                )
            gone = time.monotonic() + STOP_TIMEOUT
            while _health(url) is not None:  # Streamlit runs in its own session: check it left
                if time.monotonic() > gone:
                    raise CheckFailed(
                        f"runway-costs dashboard: exited, but {url} still answers "
                        f"{STOP_TIMEOUT} s later (Streamlit left running)",
                        dash.output(),
                    )
                time.sleep(0.25)
            return f"{url} answered ok after {waited:.1f} s; SIGTERM -> exit 0, server gone"
        code = dash.proc.poll()
        if code == 2 and attempt < 3 and "port" in dash.output().lower():
            dash.stop()
            continue  # the port was taken meanwhile: try another
        if code is not None:
            raise CheckFailed(
                f"runway-costs dashboard: exited {code} before {url} answered", dash.output()
            )
        raise CheckFailed(
            f"runway-costs dashboard: {url} did not answer 'ok' within "
            f"{DASHBOARD_HEALTH_TIMEOUT} s (last answer: {answer!r})",
            dash.output(),
        )
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- main


def _base_env() -> dict[str, str]:
    """The caller's environment without anything that points back at the checkout."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RUNWAYML_API_SECRET"):
        env.pop(name, None)
    return env


def _product_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in _base_env().items() if not k.startswith("RUNWAY_COSTS_")}
    env["RUNWAY_COSTS_NOW"] = NOW
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "160"  # Rich wraps at 80 columns in a pipe; keep lines whole
    return env


@contextlib.contextmanager
def _timed(label: str) -> Iterator[list[str]]:
    """Prints 'ok <label> (N s): <note>' when the block succeeds; the block appends the note."""
    note: list[str] = []
    start = time.monotonic()
    yield note
    tail = f": {note[0]}" if note else ""
    _say(f"ok   {label} ({time.monotonic() - start:.1f} s){tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.release_check", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (printed at the end)"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="runway-costs-release-")).resolve()
    procs: list[Background] = []
    step = "setup"
    try:
        if root.is_relative_to(REPO):
            raise CheckFailed(f"temporary folder {root} is inside the checkout {REPO}; set TMPDIR")
        src, wheelhouse, venv, work = (root / n for n in ("src", "wheelhouse", "venv", "work"))
        for d in (src, wheelhouse, work):
            d.mkdir()
        base = _base_env()

        step = "build wheel"
        with _timed(step) as note:
            copy_source(src)
            wheel = build_wheel(src, wheelhouse, base)
            note.append(wheel.name)

        step = "wheel layout"
        with _timed(step) as note:
            count = check_wheel(wheel)
            note.append(f"{count} files, only {PACKAGE}/ and its .dist-info/, data files inside")

        step = "install in a fresh venv"
        with _timed(step) as note:
            make_venv(venv, wheel, base)
            note.append(f"{venv} (pip check clean)")

        env = _product_env(venv)
        cli = venv / "bin" / "runway-costs"
        if not cli.is_file():
            raise CheckFailed(f"the wheel installed no runway-costs script at {cli}")

        step = "locate shipped sample plan"
        with _timed(step) as note:
            _, plan = installed_location(venv, work, env)
            note.append(str(plan))

        step = "price the shipped sample plan"
        with _timed(step) as note:
            note.append(check_price(cli, plan, work, env))

        step = "sandbox, collect, status"
        check_sandbox_collect_status(cli, work, env, procs)

        step = "dashboard health"
        with _timed(step) as note:
            note.append(check_dashboard(cli, work / "r.duckdb", work, env, procs))

    except CheckFailed as exc:
        _say(f"FAIL {step}: {exc}")
        if exc.detail:
            print("---- output (tail) ----", file=sys.stderr)
            print(exc.detail, file=sys.stderr)
            print("-----------------------", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # any crash is a failed step; clean up all the same
        _say(f"FAIL {step}: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    finally:
        for proc in procs:
            try:
                proc.stop()
            except Exception as exc:  # keep cleaning up the rest
                _say(f"warning: stopping {proc.what} (pid {proc.proc.pid}): {exc}")
        if args.keep:
            _say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    _say(f"passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
