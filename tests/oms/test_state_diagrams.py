"""The state diagrams in docs/ are what the models say (regenerate with `make docs`)."""

from pathlib import Path

import pytest

from oms.management.commands.state_diagrams import DIAGRAMS

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_the_diagram_in_docs_matches_the_state_machine(name):
    assert (DOCS / name).read_text(encoding="utf-8") == DIAGRAMS[name](), f"run `make docs`: {name} is stale"
