"""Hypothesis strategies shared by the verticals' parser tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Arbitrary JSON-shaped values: what a hostile peer or a damaged file can hand a parser.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
