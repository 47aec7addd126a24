"""Build datadiet's sample data from text every CPython 3.11 installation carries.

Run ``python data_samples/build.py [OUT_DIR]`` (default: this script's directory). The output is a pure
function of the standard library's source files, ``pydoc_data.topics``, the LICENSE.txt shipped with
Python, the pyarrow version, and the hand-written bad rows below: two builds give byte-identical files.

Usage from code::

    spec = importlib.util.spec_from_file_location("samples_build", "data_samples/build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    counts = mod.build(Path("/tmp/samples"))
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import random
import re
import sys
import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

N_SHARDS = 4
ROW_GROUP_SIZE = 64
ZSTD_LEVEL = 9
N_TARGET = 100
N_DUPS = 5

# Standard-library code used for the "code" domain: a fixed list, avoiding modules that
# distributions patch (site, sysconfig, distutils, ensurepip). A package name means its own *.py files.
CODE_MODULES = (
    "argparse.py", "ast.py", "bisect.py", "calendar.py", "collections", "concurrent/futures",
    "configparser.py", "csv.py", "dataclasses.py", "difflib.py", "enum.py", "fractions.py",
    "functools.py", "heapq.py", "http", "inspect.py", "ipaddress.py", "json", "logging", "pathlib.py",
    "pprint.py", "random.py", "shlex.py", "statistics.py", "string.py", "tarfile.py", "textwrap.py",
    "tokenize.py", "typing.py", "xml/etree", "zipfile.py",
)  # fmt: skip

# Modules whose docstrings become "What does the module X do?" instruction pairs.
DOC_MODULES = (
    "abc", "argparse", "ast", "asyncio", "base64", "bdb", "binascii", "bisect", "bz2", "calendar",
    "cgi", "cmd", "code", "codecs", "codeop", "collections", "colorsys", "compileall", "concurrent.futures",
    "configparser", "contextlib", "contextvars", "copy", "copyreg", "cProfile", "csv", "ctypes",
    "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "doctest", "email", "enum",
    "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "genericpath", "getopt",
    "getpass", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "html.parser",
    "http", "http.client", "http.cookiejar", "http.cookies", "http.server", "imaplib", "importlib",
    "inspect", "io", "ipaddress", "json", "json.decoder", "json.encoder", "keyword", "linecache",
    "locale", "logging", "lzma", "mailbox", "mimetypes", "modulefinder", "multiprocessing", "netrc",
    "numbers", "opcode", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools",
    "pkgutil", "platform", "plistlib", "poplib", "posixpath", "pprint", "profile", "pstats", "py_compile",
    "pyclbr", "pydoc", "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy", "sched",
    "secrets", "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "socketserver",
    "sqlite3", "ssl", "stat", "statistics", "string", "stringprep", "struct", "subprocess", "symtable",
    "tabnanny", "tarfile", "tempfile", "textwrap", "threading", "timeit", "token", "tokenize", "trace",
    "traceback", "tracemalloc", "types", "typing", "unittest", "urllib.parse", "urllib.request", "uuid",
    "warnings", "wave", "weakref", "webbrowser", "xml.dom", "zipapp", "zipfile", "zipimport",
)  # fmt: skip

N_INSTRUCT_MODULES = 121  # with the pydoc topics this makes ~200 pairs

CORPUS_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])


# --------------------------------------------------------------------------- inputs


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _licence_file() -> Path | None:
    """LICENSE.txt as site.py looks for it (next to os.py, or one level up), never the working dir."""
    candidates = [stdlib_dir() / "LICENSE.txt", Path(os.__file__).parent / "LICENSE.txt",
                  Path(os.__file__).parent.parent / "LICENSE.txt"]
    for path in candidates:
        if path.is_file():
            return path
    return None


def _builtin_licence_text() -> str:
    """Fallback: the text of the ``license`` builtin (site._Printer), without reading the working dir."""
    import _sitebuiltins
    import builtins

    data = getattr(getattr(builtins, "license", None), "_Printer__data", "See https://www.python.org/psf/license/")
    printer = _sitebuiltins._Printer("license", data)  # no files, so it never reads the working dir
    printer._Printer__setup()
    return "\n".join(printer._Printer__lines)


def read_input(name: str) -> str:
    """The text of one recorded input: ``file:<path under stdlib>`` or ``text:<what>``."""
    kind, _, what = name.partition(":")
    if kind == "file":
        if what == "LICENSE.txt":
            path = _licence_file()
            if path is None:
                raise FileNotFoundError("LICENSE.txt not found next to the standard library")
            return path.read_text(encoding="utf-8")
        return (stdlib_dir() / what).read_text(encoding="utf-8")
    if kind == "text":
        if what == "license":
            return _builtin_licence_text()
        if what == "sys.copyright":
            return sys.copyright
        if what == "credits":
            import builtins

            return getattr(builtins.credits, "_Printer__data", "")
    raise ValueError(f"unknown input name {name!r}")


def _code_files() -> list[str]:
    root = stdlib_dir()
    files = []
    for entry in CODE_MODULES:
        path = root / entry
        if path.is_dir():
            files.extend(p.relative_to(root).as_posix() for p in sorted(path.glob("*.py")))
        elif path.is_file():
            files.append(entry)
    return files


def _module_file(module: str) -> str | None:
    root = stdlib_dir()
    rel = module.replace(".", "/")
    for cand in (f"{rel}.py", f"{rel}/__init__.py"):
        if (root / cand).is_file():
            return cand
    return None


# --------------------------------------------------------------------------- chunking


def chunk_text(text: str, min_chars: int, max_chars: int) -> list[str]:
    """Split on blank lines into pieces of about min_chars..max_chars; a too-short tail joins the last piece."""
    blocks = []
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        block = block.strip("\n")
        if not block.strip():
            continue
        while len(block) > max_chars:  # one huge block: cut on line boundaries
            cut = block.rfind("\n", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            blocks.append(block[:cut])
            block = block[cut:].lstrip("\n")
        if block.strip():
            blocks.append(block)
    chunks: list[str] = []
    cur: list[str] = []
    cur_len = 0
    for block in blocks:
        if cur and cur_len >= min_chars and cur_len + 2 + len(block) > max_chars:
            chunks.append("\n\n".join(cur))
            cur, cur_len = [], 0
        cur.append(block)
        cur_len += len(block) + (2 if cur_len else 0)
    if cur:
        tail = "\n\n".join(cur)
        if chunks and len(tail) < min_chars // 2:
            chunks[-1] = chunks[-1] + "\n\n" + tail
        else:
            chunks.append(tail)
    return chunks


def first_paragraph(text: str) -> str:
    """The first plain (non-indented, non-heading) paragraph, whitespace reflowed to single spaces."""
    for para in re.split(r"\n[ \t]*\n", text.strip()):
        lines = [ln for ln in para.split("\n") if ln.strip()]
        if not lines or lines[0].startswith((" ", "\t", "New in version", "Changed in version")):
            continue
        if len(lines) == 2 and set(lines[1].strip()) <= set("*=-~^#"):
            continue  # a reST heading
        return " ".join(para.split())
    return ""


def _hash_key(s: str) -> str:
    return hashlib.blake2b(s.encode("utf-8"), digest_size=8).hexdigest()


# --------------------------------------------------------------------------- rows


def _code_rows(inputs: dict[str, str]) -> list[dict]:
    rows = []
    for rel in _code_files():
        name = f"file:{rel}"
        inputs[name] = read_input(name)
        for k, chunk in enumerate(chunk_text(inputs[name], 1000, 1800)):
            rows.append({"id": f"code:{rel}:{k}", "text": chunk, "source": "code"})
    return rows


def _topic_rows(inputs: dict[str, str]) -> list[dict]:
    from pydoc_data.topics import topics

    inputs["file:pydoc_data/topics.py"] = read_input("file:pydoc_data/topics.py")
    rows = []
    for topic in sorted(topics):
        for k, chunk in enumerate(chunk_text(topics[topic], 400, 1200)):
            rows.append({"id": f"prose:{topic}:{k}", "text": chunk, "source": "prose"})
    return rows


def _licence_rows(inputs: dict[str, str]) -> list[dict]:
    rows = []
    if _licence_file() is not None:
        name, label = "file:LICENSE.txt", "LICENSE.txt"
    else:
        name, label = "text:license", "license"
    inputs[name] = read_input(name)
    for k, chunk in enumerate(chunk_text(inputs[name], 300, 1200)):
        rows.append({"id": f"licence:{label}:{k}", "text": chunk, "source": "boilerplate"})
    for name, label in (("text:sys.copyright", "copyright"), ("text:credits", "credits")):
        inputs[name] = read_input(name)
        if inputs[name].strip():
            rows.append({"id": f"licence:{label}:0", "text": inputs[name].strip(), "source": "boilerplate"})
    return rows


def _dedupe(rows: list[dict]) -> list[dict]:
    """Drop natural exact repeats so the only duplicates in the corpus are the hand-made "dup:" rows."""
    seen, out = set(), []
    for row in rows:
        if row["text"] not in seen:
            seen.add(row["text"])
            out.append(row)
    return out


def _junk_rows(prose: list[dict], code: list[dict]) -> list[dict]:
    rng = random.Random(20240611)
    rows = [{"id": f"junk:empty:{i}", "text": "", "source": "junk"} for i in range(3)]
    rows.append({"id": "junk:null:0", "text": None, "source": "junk"})
    controls = "\x00\x01\x02\x07\x08\x0b\x0c\x1b\x7f"
    for i in range(3):
        raw = bytes(rng.getrandbits(8) for _ in range(600 + 300 * i)).decode("utf-8", errors="replace")
        pieces = [raw[j:j + 40] + rng.choice(controls) for j in range(0, len(raw), 40)]
        rows.append({"id": f"junk:binary:{i}", "text": "".join(pieces), "source": "junk"})
    repeated = ("click here to subscribe to our newsletter for the best deals on python books today!!",
                "ERROR 500 internal server error while handling GET /api/v1/items?page=1 -- retrying")
    for i, line in enumerate(repeated):
        rows.append({"id": f"junk:repeat:{i}", "text": "\n".join([line] * (300 + 100 * i)), "source": "junk"})
    alphabet = "0123456789" * 4 + ".,;:-+=/()[]{}#%$*" + "  " + "ab"
    rows.append({"id": "junk:digits:0", "text": "".join(rng.choice(alphabet) for _ in range(2000)),
                 "source": "junk"})
    # Exact duplicates of existing rows, chosen by hash order so they land in different shards.
    originals = sorted(prose, key=lambda r: _hash_key(r["id"]))[:3] + sorted(
        code, key=lambda r: _hash_key(r["id"]))[:2]
    for i, row in enumerate(originals[:N_DUPS]):
        rows.append({"id": f"dup:{i}", "text": row["text"], "source": "junk", "_dup_of": row["id"]})
    return rows


def _instruct_rows(inputs: dict[str, str]) -> list[dict]:
    from pydoc_data.topics import topics

    rows = []
    for topic in sorted(topics):
        response = first_paragraph(topics[topic])
        if response:
            rows.append({"id": f"instruct:topic:{topic}", "instruction": f"Explain the Python topic '{topic}'.",
                         "response": response, "source": "instruct"})
    n_modules = 0
    for module in DOC_MODULES:
        if n_modules >= N_INSTRUCT_MODULES:
            break
        rel = _module_file(module)
        if rel is None:
            continue
        name = f"file:{rel}"
        inputs[name] = read_input(name)
        doc = ast.get_docstring(ast.parse(inputs[name]), clean=True) or ""
        response = first_paragraph(doc)
        if len(response) < 20:
            continue
        rows.append({"id": f"instruct:module:{module}", "instruction": f"What does the module {module} do?",
                     "response": response, "source": "instruct"})
        n_modules += 1
    rows.append({"id": "instruct:empty:0", "instruction": "What does the module this do?",
                 "response": "", "source": "instruct"})
    return rows


# --------------------------------------------------------------------------- writers


def _write_parquet(rows: list[dict], path: Path, schema: pa.Schema = CORPUS_SCHEMA) -> None:
    table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)
    pq.write_table(table, path, compression="zstd", compression_level=ZSTD_LEVEL,
                   row_group_size=ROW_GROUP_SIZE)


def _jsonl_bytes(rows: list[dict], keys: tuple[str, ...]) -> bytes:
    lines = [json.dumps({k: r[k] for k in keys}, ensure_ascii=False) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _write_bad(out: Path) -> None:
    bad = out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    good = [{"id": f"ok:{i}", "text": f"A valid row number {i}."} for i in range(4)]
    lines = [json.dumps(r).encode() for r in good]
    (bad / "not_json.jsonl").write_bytes(
        b"\n".join(lines[:2] + [b'{"id": "broken:0", "text": "this line is cut off'] + lines[2:]) + b"\n")
    (bad / "bad_utf8.jsonl").write_bytes(
        b"\n".join(lines[:2] + [b'{"id": "badutf8:0", "text": "caf\xe9 \xff\xfe latin-1 bytes"}'] + lines[2:])
        + b"\n")
    small = [{"id": f"t:{i}", "text": f"Row {i} of a parquet file whose footer is missing.", "source": "prose"}
             for i in range(20)]
    buf = io.BytesIO()
    table = pa.Table.from_pylist(small, schema=CORPUS_SCHEMA)
    pq.write_table(table, buf, compression="zstd", compression_level=ZSTD_LEVEL, row_group_size=ROW_GROUP_SIZE)
    data = buf.getvalue()
    (bad / "truncated.parquet").write_bytes(data[: len(data) * 2 // 3])
    no_text = pa.table({"id": [f"b:{i}" for i in range(5)], "body": [f"Body text {i}." for i in range(5)]})
    pq.write_table(no_text, bad / "no_text_column.parquet", compression="zstd", compression_level=ZSTD_LEVEL)


def _readme(counts: dict, dups: list[tuple[str, str]]) -> str:
    c = counts
    by_source = "\n".join(f"| {s} | {n} |" for s, n in c["corpus_by_source"].items())
    dup_lines = "\n".join(f"  - `{d}` = `{o}`" for d, o in dups)
    shards = ", ".join(str(n) for n in c["rows_per_shard"])
    return f"""# data_samples

Small, real, multi-domain sample data for datadiet's tests, docs and examples. Everything here except
`recipes/` is generated by `build.py` from text that every CPython 3.11 installation carries, plus a few
hand-written bad rows. Do not edit the generated files; change `build.py` and rebuild:

    python data_samples/build.py          # writes into data_samples/ (or pass an output directory)

The build uses only the standard library and pyarrow and is deterministic: two runs give
byte-identical files. Bytes depend on the Python patch version (the stdlib text) and on the pyarrow
version (Parquet encoding); both, and a SHA-256 of every input text, are recorded in `BUILD_INFO.json`.
`tests/test_data_samples.py` checks that the committed files equal a fresh build when the
environment matches the recorded one.

## corpus/ — `part-00000.parquet` … `part-0000{N_SHARDS - 1}.parquet`

{c["corpus_rows"]} rows in {N_SHARDS} shards (rows per shard: {shards}), zstd, row groups of {ROW_GROUP_SIZE} rows.
Columns `id` (string, unique), `text` (string, nullable), `source` (string). Rows are ordered by a hash
of their id, then dealt round-robin to the shards, so every shard mixes all domains.

| source | rows |
|---|---|
{by_source}

- **code** — the standard library's own source (`sysconfig.get_paths()["stdlib"]`), a fixed sorted
  list of modules, cut on blank lines into pieces of ~1–1.8 KB (a short file or a merged tail may be
  smaller or up to ~2.7 KB). Id `code:<path>:<chunk>`, e.g.
  `code:json/decoder.py:0`.
- **prose** — `pydoc_data.topics.topics` (the language reference behind `help()`), cut into
  ~0.4–1.2 KB pieces. Id `prose:<topic>:<chunk>`, e.g. `prose:assert:0`. The {N_TARGET} chunks in
  `target/prose.jsonl` are excluded.
- **boilerplate** — the LICENSE.txt shipped with Python (or the `license()` builtin's text when the
  file is absent), cut into ~0.3–1.2 KB pieces, plus `sys.copyright` and the `credits()` text.
  Id `licence:<origin>:<chunk>`.
- **junk** — hand-written bad rows: 3 empty texts (`junk:empty:*`), 1 null text (`junk:null:0`),
  3 rows of decoded random bytes with control characters (`junk:binary:*`), 2 rows of one long line
  repeated hundreds of times (`junk:repeat:*`), 1 row of mostly digits and punctuation
  (`junk:digits:0`), and {N_DUPS} exact duplicates of other corpus rows:
{dup_lines}

Natural exact repeats among the chunks are dropped, so the `dup:*` rows are the only exact duplicates.

## instruct/train.jsonl

{c["instruct_rows"]} instruction/response pairs, columns `id`, `instruction`, `response`, `source`
(`"instruct"`): "Explain the Python topic 'X'." → the first paragraph of that pydoc topic
({c["instruct_topics"]} rows, `instruct:topic:*`), and "What does the module X do?" → the first paragraph of
the module's docstring ({c["instruct_modules"]} rows, `instruct:module:*`), plus 1 row with an empty
response (`instruct:empty:0`).

## target/prose.jsonl

{c["target_rows"]} pydoc-topic chunks (columns `id`, `text`) to use as a DSIR / importance-resampling
target set; chosen by hash of their id and left out of the corpus.

## bad/

Tiny hand-made bad inputs for error-handling tests and docs:

- `not_json.jsonl` — 5 lines; line 3 is not JSON (an unterminated string).
- `bad_utf8.jsonl` — 5 lines; line 3 holds the invalid UTF-8 bytes `\\xe9` and `\\xff\\xfe`.
- `truncated.parquet` — a valid 20-row Parquet file (id, text, source) with its last third cut off
  (no footer).
- `no_text_column.parquet` — 5 rows with columns `id` and `body`, no `text`.

## BUILD_INFO.json

Python and pyarrow versions of the build, SHA-256 of each input text and of each output file, and
the row counts above.
"""


# --------------------------------------------------------------------------- build


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(out_dir: Path) -> dict:
    """Write corpus/, instruct/, target/, bad/, README.md and BUILD_INFO.json under out_dir; return counts."""
    out = Path(out_dir)
    inputs: dict[str, str] = {}
    code = _dedupe(_code_rows(inputs))
    topic_chunks = _dedupe(_topic_rows(inputs))
    licence = _licence_rows(inputs)

    target_ids = {r["id"] for r in sorted(topic_chunks, key=lambda r: _hash_key(r["id"]))[:N_TARGET]}
    target = [r for r in topic_chunks if r["id"] in target_ids]
    prose = [r for r in topic_chunks if r["id"] not in target_ids]
    seen = {r["text"] for r in code}
    prose = [r for r in prose if r["text"] not in seen]
    seen |= {r["text"] for r in prose}
    licence = [r for r in _dedupe(licence) if r["text"] not in seen]
    junk = _junk_rows(prose, code)

    corpus = sorted(code + prose + licence + junk, key=lambda r: (_hash_key(r["id"]), r["id"]))
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    for old in (out / "corpus").glob("part-*.parquet"):
        old.unlink()
    for shard in range(N_SHARDS):
        _write_parquet(corpus[shard::N_SHARDS], out / "corpus" / f"part-{shard:05d}.parquet")

    instruct = _instruct_rows(inputs)
    (out / "instruct").mkdir(parents=True, exist_ok=True)
    (out / "instruct" / "train.jsonl").write_bytes(
        _jsonl_bytes(instruct, ("id", "instruction", "response", "source")))
    (out / "target").mkdir(parents=True, exist_ok=True)
    (out / "target" / "prose.jsonl").write_bytes(_jsonl_bytes(target, ("id", "text")))
    _write_bad(out)

    sources = ("code", "prose", "boilerplate", "junk")
    counts = {
        "corpus_rows": len(corpus),
        "corpus_by_source": {s: sum(r["source"] == s for r in corpus) for s in sources},
        "rows_per_shard": [len(corpus[i::N_SHARDS]) for i in range(N_SHARDS)],
        "instruct_rows": len(instruct),
        "instruct_topics": sum(r["id"].startswith("instruct:topic:") for r in instruct),
        "instruct_modules": sum(r["id"].startswith("instruct:module:") for r in instruct),
        "target_rows": len(target),
    }
    dups = [(r["id"], r["_dup_of"]) for r in junk if "_dup_of" in r]
    (out / "README.md").write_text(_readme(counts, dups), encoding="utf-8", newline="\n")

    outputs = sorted(p for p in out.rglob("*") if p.is_file() and p.relative_to(out).parts[0] in
                     {"corpus", "instruct", "target", "bad", "README.md"})
    info = {
        "python_version": list(sys.version_info[:3]),
        "python_implementation": sys.implementation.name,
        "pyarrow_version": pa.__version__,
        "counts": counts,
        "duplicates": dict(dups),
        "inputs_sha256": {k: _sha256(v.encode("utf-8")) for k, v in sorted(inputs.items())},
        "outputs_sha256": {p.relative_to(out).as_posix(): _sha256(p.read_bytes()) for p in outputs},
    }
    (out / "BUILD_INFO.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8", newline="\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parent
    counts = build(out)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
