"""IPC symbols: validate and normalise `H01M 10/0525` -> `H01M10/0525`."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_IPC = re.compile(r"^([A-H])(\d{2})([A-Z])(?:(\d{1,4})/(\d{2,6}))?$")


@dataclass(frozen=True)
class Ipc:
    subclass: str  # e.g. H01M
    group: str | None  # main group digits without leading zeros, e.g. "10"
    subgroup: str | None  # e.g. "0525"

    @property
    def code(self) -> str:
        return f"{self.subclass}{self.group}/{self.subgroup}" if self.group else self.subclass


def parse_ipc(raw: str) -> Ipc:
    s = unicodedata.normalize("NFKC", raw).upper().replace(" ", "")
    s = re.sub(r"\(\d{4}\.\d{2}\)$", "", s)  # drop a trailing version, e.g. (2006.01)
    m = _IPC.match(s)
    if not m:
        raise ValueError(
            f"'{raw}' is not an IPC symbol: expected section A-H, class, subclass and"
            " optionally group/subgroup, e.g. H01M or H01M 10/0525"
        )
    section, cls, sub, group, subgroup = m.groups()
    return Ipc(f"{section}{cls}{sub}", str(int(group)) if group else None, subgroup)


def normalize_ipc(raw: str) -> str:
    return parse_ipc(raw).code
