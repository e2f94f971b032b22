"""services.common.tags on literal inputs, each checked against the `re` pattern it stands for."""

import re

import pytest

from services.common import tags


def test_block_spans_are_case_sensitive_unless_asked():
    text = "<T>a</T> <t>b</t>"
    assert tags.block_spans(text, "t") == [m.span(1) for m in re.finditer(r"<t>(.*?)</t>", text, re.S)]
    assert tags.block_spans(text, "t", ignore_case=True) == [
        m.span(1) for m in re.finditer(r"<t>(.*?)</t>", text, re.S | re.I)]


def test_last_loose_block_refuses_a_non_ascii_tag_by_name():
    with pytest.raises(ValueError, match="must be ASCII: 'é'"):
        tags.last_loose_block("<é>x</é>", "é")
