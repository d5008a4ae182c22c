"""Collect the API's English messages from the source (for shared/locale's catalogue).

A message is the text of: a problem raised (`NotFound("…")`, `Unprocessable.field(f, "…")`),
a `ValueError` / `RecordError` / `InvalidNumber` reason, a `"reason": "…"` entry, a
`reasons.append("…")`, a `*_REASON` constant, or a text marked `N_("…")`. f-strings become templates with their expressions in braces, as
shared.i18n matches them. A `field: reason` text yields the reason: the field name is kept
as it is when translating.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from shared.i18n import _PLACEHOLDER, PYDANTIC_TEMPLATES, TITLES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("services", "shared")
SKIP_PARTS = {"portal", "migrations", "locale"}  # the portal has its own catalogue
PROBLEMS = {
    "ProblemError", "NotFound", "Unauthorized", "Forbidden", "Conflict", "PayloadTooLarge",
    "UnsupportedMedia", "ServiceUnavailable", "Unprocessable", "TooManyRequests",
}  # fmt: skip
REASON_CALLS = {"ValueError", "InvalidNumber", "N_"}
_FIELD = re.compile(r"^[a-z_][a-z0-9_.\[\]{}]*: (.+)$", re.S)


def _text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = ""
        for v in node.values:
            if isinstance(v, ast.Constant):
                out += str(v.value)
            elif isinstance(v, ast.FormattedValue):
                out += "{" + ast.unparse(v.value) + "}"
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _text(node.left), _text(node.right)
        return a + b if a is not None and b is not None else None
    return None


def _found(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            owner = (
                f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            )
            if (name in PROBLEMS or name in REASON_CALLS) and node.args:
                yield from filter(None, [_text(node.args[0])])
            elif name == "field" and owner in PROBLEMS and len(node.args) >= 2:
                yield from filter(None, [_text(node.args[1])])
            elif name == "append" and owner.endswith("reasons") and node.args:
                yield from filter(None, [_text(node.args[0])])
            elif name == "RecordError" and len(node.args) >= 2:
                yield from filter(None, [_text(node.args[1])])
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "reason":
                    yield from filter(None, [_text(v)])
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id.endswith("_REASON"):
                    yield from filter(None, [_text(node.value)])


def _normalise(message: str) -> str | None:
    m = _FIELD.match(message)
    if m:
        message = m.group(1)
    if not re.search(r"[A-Za-z]{2}", _PLACEHOLDER.sub("", message)):
        return None  # nothing but placeholders: nothing to translate
    return message


def source_messages(root: Path = ROOT) -> dict[str, list[str]]:
    """message → the files it occurs in."""
    out: dict[str, list[str]] = {}
    for top in SOURCES:
        for path in sorted((root / top).rglob("*.py")):
            if SKIP_PARTS & set(path.relative_to(root).parts):
                continue
            for raw in _found(ast.parse(path.read_text(encoding="utf-8"))):
                msg = _normalise(raw)
                if msg:
                    out.setdefault(msg, []).append(str(path.relative_to(root)))
    return out


def all_messages(root: Path = ROOT) -> dict[str, list[str]]:
    msgs = source_messages(root)
    for t in TITLES:
        msgs.setdefault(t, []).append("shared/i18n.py")
    for t in PYDANTIC_TEMPLATES.values():
        if t != PYDANTIC_TEMPLATES["value_error"]:
            msgs.setdefault(t, []).append("pydantic")
    return msgs
