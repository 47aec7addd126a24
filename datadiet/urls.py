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
    """``path`` as a local directory; a URL is refused (remote outputs are not written yet)."""
    text = str(path)
    if is_remote(text):
        raise ConfigError(f"{where}: {text!r} is a URL; datadiet writes its output to a local directory "
                          "for now. Write to a local path and copy it (e.g. `aws s3 sync OUT s3://...`)")
    return text[len("file://"):] if text.startswith("file://") else text
