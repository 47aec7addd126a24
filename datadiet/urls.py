"""Paths that are URLs: which fsspec filesystem they need and the extra that installs it.

Example::

    require_filesystem("s3://bucket/shards/*.parquet", "source.paths")
    # InputError naming `pip install 'datadiet[s3]'` when s3fs is not installed
"""

from __future__ import annotations

from .errors import ConfigError, InputError

#: fsspec protocol -> the datadiet extra that installs its filesystem
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
LOCAL = {"file", "local"}


def protocols(path: str) -> list[str]:
    """The protocols of a (possibly chained, ``a::b://``) URL; empty for a local path."""
    parts = str(path).split("::")
    out = [p.lower() for p in parts[:-1] if "://" not in p and "/" not in p]
    return out + [p.split("://", 1)[0].lower() for p in parts if "://" in p]


def is_remote(path) -> bool:
    return any(p not in LOCAL for p in protocols(str(path)))


def require_filesystem(path: str, where: str) -> None:
    """Fail early, naming the extra to install, when ``path`` needs a filesystem that is missing."""
    import fsspec

    for proto in protocols(path):
        if proto in LOCAL:
            continue
        try:
            fsspec.get_filesystem_class(proto)
        except ImportError as exc:
            extra = EXTRAS.get(proto)
            hint = (f"install it with: pip install 'datadiet[{extra}]'" if extra
                    else f"install the fsspec filesystem for {proto!r}")
            raise InputError(f"{where}: {path!r} needs the {proto!r} filesystem, which is not installed "
                             f"({exc}); {hint}") from None
        except ValueError:
            raise InputError(f"{where}: {path!r} has an unknown protocol {proto!r}") from None


def local_output(path, where: str = "output.path") -> str:
    """``path`` as a local directory (``file://`` stripped). URL outputs are published through
    fsspec by pipeline/object_store.py, never turned into local folders named ``s3:``."""
    text = str(path)
    if is_remote(text):
        raise ConfigError(f"{where}: {text!r} is a URL, not a local directory")
    return text[len("file://"):] if text.startswith("file://") else text


def local_run_dir(path, command: str) -> str:
    """``path`` for a command that works on a local run directory; a URL output names its
    work directory (``datadiet inspect URL`` prints it) instead of failing obscurely."""
    text = str(path)
    if is_remote(text):
        raise ConfigError(f"datadiet {command}: {text!r} is a URL output; {command} works on a local run directory: "
                          "use the run's work directory (`datadiet inspect URL` prints it as 'work dir')")
    return text[len("file://"):] if text.startswith("file://") else text
