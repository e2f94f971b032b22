"""docs/recipes.md lists every recipe field with its default, as the pydantic models define them."""

import re

from pydantic_core import PydanticUndefined

from trainer.recipe import docs as recipe_docs
from trainer.recipe.docs import DOC, SECTIONS, describe


def test_the_generated_reference_is_up_to_date():
    assert recipe_docs.main(["--check"]) == 0, "run: python -m trainer.recipe.docs --write"


def test_every_field_of_every_section_is_documented_with_its_default():
    text = DOC.read_text()
    for title, model in SECTIONS:
        table = text.split(f"### `{title}`", 1)[1].split("###", 1)[0]
        for name, field in model.model_fields.items():
            row = re.search(rf"^\| `{name}` \| (.*?) \| (.*?) \| (.+) \|$", table, re.M)
            assert row, f"{title}.{name} is missing from {DOC.name}"
            if field.default is PydanticUndefined and field.default_factory is None:
                assert row.group(2) == "**required**"
            elif field.default_factory is None:
                assert row.group(2) == f"`{field.default!r}`"
            assert describe(title, model, name), f"{title}.{name} has no description"


def test_docs_cite_only_files_the_repository_has():
    root = DOC.parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"
