"""Issue 9, defect 8 on matching: no input gives a 500 (NUL bytes, integers past int64)."""

from __future__ import annotations

from tests.conftest import CatalogHandle
from tests.hostile import probe_parameters
from tests.matching.conftest import MatchingHandle


def test_every_get_parameter_refuses_nul_and_huge_integers_with_422(
    catalog: CatalogHandle, matching: MatchingHandle
) -> None:
    assert probe_parameters(matching.url, catalog.admin_key) == []
