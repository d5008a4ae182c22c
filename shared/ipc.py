"""IPC symbols: validate and normalise `H01M 10/0525` -> `H01M10/0525`.

Accepted forms: a subclass (`H01M`), a main group (`H01M10`, `H01M 10/00`), a full
group (`H01M 10/0525`), zero-padded forms (`H01M 010/052500`, the WIPO 14-character
`H01M0010052500`), lower case, full-width characters and a trailing version
(`(2006.01)`). A main group given without a subgroup is its `/00` heading. Trailing
zeros of a subgroup beyond two digits are padding: IPC never numbers `/18` and `/180`
differently, because subgroups sort as decimals.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_IPC = re.compile(r"^([A-H])(\d{2})([A-Z])(?:(\d{1,4})(?:/(\d{2,6}))?)?$")
_WIPO14 = re.compile(r"^([A-H]\d{2}[A-Z])(\d{4})(\d{6})$")


@dataclass(frozen=True)
class Ipc:
    subclass: str  # e.g. H01M
    group: str | None  # main group digits without leading zeros, e.g. "10"
    subgroup: str | None  # e.g. "0525"; "00" for a main group

    @property
    def code(self) -> str:
        return f"{self.subclass}{self.group}/{self.subgroup}" if self.group else self.subclass


def _subgroup(digits: str) -> str:
    stripped = digits.rstrip("0")
    return stripped if len(stripped) >= 2 else digits[:2]


# Pure, and uploads repeat a few thousand codes across all their records (a code that
# raises is not cached).
@lru_cache(maxsize=65536)
def parse_ipc(raw: str) -> Ipc:
    s = unicodedata.normalize("NFKC", raw).upper().replace(" ", "")
    s = re.sub(r"\(\d{4}\.\d{2}\)$", "", s)  # drop a trailing version, e.g. (2006.01)
    wipo = _WIPO14.match(s)
    if wipo:
        s = f"{wipo[1]}{wipo[2]}/{wipo[3]}"
    m = _IPC.match(s)
    if not m:
        raise ValueError(
            f"'{raw}' is not an IPC symbol: expected section A-H, class, subclass and"
            " optionally main group and subgroup, e.g. H01M, H01M10 or H01M 10/0525"
        )
    section, cls, sub, group, subgroup = m.groups()
    if group is None:
        return Ipc(f"{section}{cls}{sub}", None, None)
    return Ipc(f"{section}{cls}{sub}", str(int(group)), _subgroup(subgroup or "00"))


def normalize_ipc(raw: str) -> str:
    return parse_ipc(raw).code
