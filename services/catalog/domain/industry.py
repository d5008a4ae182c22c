"""Strategic-emerging-industry tags from IPC codes (CNIPA 2021 concordance).

A rule matches a patent when one of its IPC codes falls under a rule pattern and not
under one of that rule's exclusions. Rules that carry keywords (the table's 关键词/说明
column) additionally need the patent text to mention one of the keyword phrases; the
phrases are long product descriptions, so we match their distinctive fragments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from shared.ipc import Ipc, parse_ipc

_GENERIC = re.compile(r"(等其他|其他|相关关键词|及相关|相关|及配套|等)")
_SPLIT = re.compile(r"[；;、，,（）()\s]|等|及|和|与")
_SUFFIXES = ("设备制造", "制造", "服务", "产品", "生产")


@dataclass(frozen=True)
class Pattern:
    subclass: str
    group: str | None
    subgroup: str | None
    wildcard: bool

    def covers(self, ipc: Ipc) -> bool:
        if len(self.subclass) == 3:  # a whole class, e.g. G16*
            return ipc.subclass.startswith(self.subclass)
        if ipc.subclass != self.subclass:
            return False
        if self.group is None:
            return True  # whole subclass (always written with *)
        if ipc.group != self.group:
            return False
        if self.subgroup is None:
            return self.wildcard or ipc.subgroup in (None, "00")
        if ipc.subgroup is None:
            return False
        if self.wildcard:
            return ipc.subgroup.startswith(self.subgroup.rstrip("0") or "0")
        return ipc.subgroup == self.subgroup


_PATTERN = re.compile(r"^([A-H]\d{2}[A-Z]?)(\d{1,4})?(?:/(\d{1,6}))?(\*?)$")


def _parse_pattern(raw: str) -> Pattern:
    m = _PATTERN.match(raw.replace(" ", ""))
    if not m:
        raise ValueError(f"bad concordance pattern {raw!r}")
    head, group, subgroup, star = m.groups()
    return Pattern(head, str(int(group)) if group else None, subgroup, bool(star))


@dataclass(frozen=True)
class Rule:
    patterns: tuple[Pattern, ...]
    exclusions: tuple[Pattern, ...]
    fragments: tuple[str, ...]  # empty = IPC-only rule
    negative: tuple[str, ...] = ()


@dataclass(frozen=True)
class Branch:
    branch_no: str
    branch_name: str
    industry_no: str
    industry_name: str
    rules: tuple[Rule, ...]


def _fragments(keywords: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(positive fragments, negative fragments). '不包含X' means: not when the text says X."""
    out: set[str] = set()
    negative: set[str] = set()
    for kw in keywords:
        if kw.startswith(("不包含", "不含")):
            negative.add(kw.removeprefix("不包含").removeprefix("不含"))
            continue
        whole = _GENERIC.sub("", kw)
        if len(whole) <= 4 and len(whole) >= 2:
            out.add(whole.lower())
            continue
        for part in _SPLIT.split(_GENERIC.sub(" ", kw)):
            for suffix in _SUFFIXES:
                if part.endswith(suffix) and len(part) - len(suffix) >= 2:
                    part = part[: -len(suffix)]
                    break
            if len(part) >= 3:
                out.add(part.lower())
    return tuple(sorted(out)), tuple(sorted(negative))


@lru_cache(maxsize=1)
def branches() -> tuple[Branch, ...]:
    text = resources.files("services.catalog.data").joinpath("sei_ipc_concordance_2021.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    result = []
    for b in data["branches"]:
        rules = tuple(
            Rule(
                tuple(_parse_pattern(p) for p in r["ipc_patterns"]),
                tuple(_parse_pattern(p) for p in r["ipc_exclusions"]),
                *_fragments(r["keywords"]),
            )
            for r in b["rules"]
        )
        result.append(
            Branch(b["branch_no"], b["branch_name"], b["industry_no"], b["industry_name"], rules)
        )
    return tuple(result)


@lru_cache(maxsize=1)
def _rules_by_subclass() -> dict[str, list[tuple[Branch, Rule]]]:
    index: dict[str, list[tuple[Branch, Rule]]] = {}
    for branch in branches():
        for rule in branch.rules:
            for key in {p.subclass for p in rule.patterns}:
                index.setdefault(key, []).append((branch, rule))
    return index


def industry_catalogue() -> list[dict[str, str]]:
    return [
        {
            "branch_no": b.branch_no,
            "branch_name": b.branch_name,
            "industry_no": b.industry_no,
            "industry_name": b.industry_name,
        }
        for b in branches()
    ]


def known_branch(code: str) -> bool:
    return any(b.branch_no == code or b.industry_no == code for b in branches())


@lru_cache(maxsize=65536)
def _rules_for_code(code: str) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """(branch, keyword fragments, negative fragments) of every rule whose IPC part matches.

    Cached per code: uploads repeat the same IPC codes over and over.
    """
    ipc = parse_ipc(code)
    index = _rules_by_subclass()
    out = []
    for branch, rule in index.get(ipc.subclass, []) + index.get(ipc.subclass[:3], []):
        if any(p.covers(ipc) for p in rule.patterns) and not any(
            x.covers(ipc) for x in rule.exclusions
        ):
            out.append((branch.branch_no, rule.fragments, rule.negative))
    return tuple(out)


def tag_industries(ipc_codes: list[str], text: str) -> list[str]:
    """Branch numbers (e.g. '1.2') whose rules this patent satisfies, sorted."""
    lowered = text.lower()
    hits: set[str] = set()
    for code in ipc_codes:
        for branch_no, fragments, negative in _rules_for_code(code):
            if branch_no in hits:
                continue
            if fragments and not any(f in lowered for f in fragments):
                continue
            if any(f in lowered for f in negative):
                continue
            hits.add(branch_no)
    return sorted(hits, key=lambda s: tuple(int(x) for x in s.split(".")))
