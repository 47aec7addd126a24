"""What a registered component takes and gives: parameters (type, default, constraint),
output columns and docstring, as text for ``datadiet describe`` / ``list -v`` and as the
Markdown recipe reference (``docs/recipe-reference.md``).

Example::

    info = component_info("scorer", "compression")
    info.params[0].name, info.params[0].default, info.columns   # 'level', '6', [('compression.ratio', 'float')]
    print(render_text(info))
"""

from __future__ import annotations

import inspect
import textwrap
import typing
from dataclasses import dataclass, field
from typing import Any

from .params import Interval, _type_name
from .registry import FAMILIES, get, names

#: Recipe sections that are components themselves, documented with the registered ones.
SECTIONS = {"source": ("datadiet.readers.source", "Source"), "budget": ("datadiet.select.base", "Budget")}
PLACEHOLDER = "<{name}>"


@dataclass
class ParamInfo:
    name: str
    type: str
    default: str  # "required" when there is none
    constraint: str = ""


@dataclass
class ComponentInfo:
    family: str
    name: str
    qualname: str
    doc: str
    params: list[ParamInfo] = field(default_factory=list)
    #: (column, Arrow type) a scorer adds, or a selector's extra decision columns
    columns: list[tuple[str, str]] = field(default_factory=list)
    kind: str = ""

    @property
    def summary(self) -> str:
        return self.doc.strip().split("\n\n")[0].replace("\n", " ") if self.doc else ""


def _constraint(rule: Any) -> str:
    if rule is None:
        return ""
    if isinstance(rule, Interval):
        return rule.describe()
    if inspect.isfunction(rule) and rule.__doc__:
        return inspect.getdoc(rule).splitlines()[0]
    return "validated before any compute (see the description)"


def params_of(cls) -> list[ParamInfo]:
    hints = typing.get_type_hints(cls.__init__)
    out = []
    for name, p in cls._signature().items():
        default = "required" if p.default is inspect.Parameter.empty else repr(p.default)
        out.append(ParamInfo(name, _type_name(hints.get(name, Any)), default,
                             _constraint(cls._constraints.get(name))))
    return out


def _placeholder_instance(cls):
    required = {n: PLACEHOLDER.format(name=n) for n, p in cls._signature().items()
                if p.default is inspect.Parameter.empty}
    return cls(**required)


def scorer_columns(cls, name: str) -> list[tuple[str, str]]:
    """Columns a scorer instance called ``name`` adds, with default parameters."""
    from .stages.score import column_name

    try:
        columns = _placeholder_instance(cls).output_columns()
    except Exception:  # e.g. a width read from the model directory
        return [(name, "depends on the model or the parameters (see above)")]
    return [(column_name(name, key), str(dtype)) for key, dtype in columns.items()]


def component_info(family: str, name: str) -> ComponentInfo:
    cls = get(family, name)
    info = ComponentInfo(family, name, f"{cls.__module__}.{cls.__qualname__}", inspect.getdoc(cls) or "",
                         params_of(cls), kind=getattr(cls, "kind", ""))
    if family == "scorer":
        info.columns = scorer_columns(cls, name)
    elif family == "selector":
        info.columns = [(c, str(t)) for c, t in getattr(cls, "extra_columns", {}).items()]
    elif family == "reader":
        info.kind = ", ".join(getattr(cls, "extensions", ())) or "-"
    return info


def section_info(section: str) -> ComponentInfo:
    import importlib

    module, attr = SECTIONS[section]
    cls = getattr(importlib.import_module(module), attr)
    return ComponentInfo("recipe section", section, f"{module}.{attr}", inspect.getdoc(cls) or "", params_of(cls))


def find(name: str) -> list[ComponentInfo]:
    """Every component (of any family) or recipe section called ``name``."""
    found = [component_info(f, name) for f in FAMILIES if name in names(f)]
    if name in SECTIONS:
        found.append(section_info(name))
    return found


def render_text(info: ComponentInfo) -> str:
    kind = f" ({info.kind})" if info.kind and info.family != "reader" else ""
    lines = [f"{info.family} {info.name}{kind}: {info.qualname}", ""]
    lines += [textwrap.indent(info.doc, "  "), ""] if info.doc else []
    lines.append("parameters:" if info.params else "parameters: (none)")
    width = max((len(p.name) for p in info.params), default=0)
    for p in info.params:
        extra = f"; {p.constraint}" if p.constraint else ""
        lines.append(f"  {p.name:<{width}}  {p.type} = {p.default}{extra}")
    if info.family == "reader":
        lines.append(f"file names: {info.kind}")
    if info.columns:
        lines.append("output columns:" if info.family == "scorer" else "extra decision columns:")
        lines += [f"  {c}: {t}" for c, t in info.columns]
    return "\n".join(lines)


def render_line(info: ComponentInfo) -> str:
    """One line for ``datadiet list -v``: name, parameters with defaults, summary."""
    params = ", ".join(p.name if p.default == "required" else f"{p.name}={p.default}" for p in info.params)
    return f"  {info.name}({params})\n      {textwrap.shorten(info.summary, 150, placeholder=' ...')}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown_section(info: ComponentInfo) -> str:
    kind = f" ({info.kind})" if info.kind and info.family != "reader" else ""
    lines = [f"### `{info.name}`{kind}", "", f"`{info.qualname}`", ""]
    if info.doc:
        lines += [info.doc, ""]
    if info.params:
        lines += ["| parameter | type | default | constraint |", "| --- | --- | --- | --- |"]
        lines += [f"| `{p.name}` | {_cell(p.type)} | `{_cell(p.default)}` | {_cell(p.constraint)} |"
                  for p in info.params]
        lines.append("")
    else:
        lines += ["No parameters.", ""]
    if info.family == "reader":
        lines += [f"File names: {info.kind}", ""]
    if info.columns:
        title = "Output columns" if info.family == "scorer" else "Extra decision columns"
        lines += [f"{title}: " + ", ".join(f"`{c}` ({t})" for c, t in info.columns), ""]
    return "\n".join(lines)


def recipe_reference() -> str:
    """The Markdown reference of every recipe section and registered component."""
    from .config import EXECUTION_KEYS, OUTPUT_KEYS, TOP_LEVEL

    parts = [
        "# Recipe reference",
        "",
        "Generated from the registered components by `datadiet describe --all --markdown`; "
        "a test checks it is current (regenerate: `.venv/bin/datadiet describe --all --markdown "
        "> docs/recipe-reference.md`).",
        "",
        f"A recipe is a YAML mapping with the keys {', '.join(f'`{k}`' for k in sorted(TOP_LEVEL))}. "
        f"`output` takes {', '.join(f'`{k}`' for k in sorted(OUTPUT_KEYS))}; "
        f"`execution` takes {', '.join(f'`{k}`' for k in sorted(EXECUTION_KEYS))}. "
        "Relative paths resolve against the recipe file's directory. A scorer or selector is "
        "`NAME` or `{type: NAME, param: value, ...}`; a scorer also takes `name:` (its column prefix). "
        "Score columns are `<name>` (the main score) or `<name>.<key>`.",
        "",
        "## Recipe sections",
        "",
    ]
    parts += [render_markdown_section(section_info(s)) for s in SECTIONS]
    for family in FAMILIES:
        parts += [f"## {family.capitalize()}s", ""]
        parts += [render_markdown_section(component_info(family, n)) for n in names(family)]
    return "\n".join(parts).rstrip() + "\n"
