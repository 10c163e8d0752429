"""Reading the project's TOML files (config, rate table, tier table) with one set of messages."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """Parse ``path``; any problem raises ``error`` naming the file (``what``: "rate file").

    Each loader has its own error type so its callers keep catching just that one.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{path}: invalid TOML: nested too deeply") from None
    except ValueError:  # an integer longer than Python converts (4300 digits)
        raise error(f"{path}: invalid TOML: a number has too many digits") from None
