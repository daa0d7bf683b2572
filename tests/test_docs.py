"""The docs as a reader meets them: README.md an entry point, every relative link resolving, and the
backend tables in docs/ generated from the registry, not written by hand."""

import re

from conftest import REGISTRY, ROOT, rosetta
from rosetta import catalog

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_an_entry_point():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; long explanations belong in docs/"


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + "; ".join(broken)


def test_the_docs_pages_the_architecture_names_exist():
    for name in ("architecture.md", "adding-a-task.md", "adding-a-backend.md", "backends.md", "timing.md",
                 "docker.md", "results.md", "testing.md"):
        assert (ROOT / "docs" / name).exists(), f"docs/{name} is missing"
    for task in REGISTRY.tasks.values():
        if task.origin == "built-in":
            assert (ROOT / "docs" / "tasks" / f"{task.name}.md").exists(), f"no page for the task {task.name}"


def test_the_backend_tables_in_the_docs_are_the_registry_s():
    page = (ROOT / "docs" / "backends.md").read_text()
    assert catalog.embedded(page) == catalog.markdown(REGISTRY), (
        "docs/backends.md's tables are stale: run `rosetta list --update docs/backends.md`")


def test_rosetta_list_update_rewrites_only_the_tables(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Before\n\n{catalog.BEGIN}\nold table\n{catalog.END}\n\nAfter.\n")
    result = rosetta("list", "--update", str(page))
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert text.startswith("# Before\n\n") and text.endswith("\n\nAfter.\n") and "old table" not in text
    assert catalog.embedded(text) == catalog.markdown(REGISTRY)
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    result = rosetta("list", "--update", str(bare))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "markers" in result.stderr
    assert bare.read_text() == "no markers\n"


def test_every_published_table_is_what_its_committed_run_gives():
    from rosetta import published
    checked = 0
    for page in PAGES:
        loaded: dict = {}
        for table in published.tables(page.read_text()):
            assert table.body == published.render(table, REGISTRY, page.parent, loaded=loaded), (
                f"{page.relative_to(ROOT)}: the table from {table.run} is stale: run `rosetta publish {page.relative_to(ROOT)}`")
            checked += 1
    assert checked >= 3, "docs/results.md publishes its tables from committed runs"


def test_a_published_table_without_its_data_is_a_one_line_error(tmp_path):
    page = tmp_path / "page.md"
    text = "<!-- table: docs/results/no-such-run -->\nold\n<!-- end table -->\n"
    page.write_text(text)
    result = rosetta("publish", str(page))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no-such-run/results.jsonl is missing" in result.stderr
    assert page.read_text() == text


def test_publish_fills_each_mark_in_place_and_a_second_run_changes_nothing(tmp_path):
    from rosetta import published
    page = tmp_path / "page.md"
    run = "docs/results/ladder-float64"
    page.write_text(f"# Title\n\n<!-- table: {run} columns=variant,recipe -->\n<!-- end table -->\n\nBetween.\n\n"
                    f"<!-- table: {run} columns=variant,agreement -->\nstale\n<!-- end table -->\n\nEnd.\n")
    assert published.publish(page, REGISTRY) == 2
    text = page.read_text()
    assert text.startswith("# Title\n\n<!-- table: ") and text.endswith("<!-- end table -->\n\nEnd.\n")
    assert "\n\nBetween.\n\n" in text and "stale" not in text
    first, second = published.tables(text)
    assert "| variant" in first.body and "| recipe" in first.body and "vs numpy" in second.body
    published.publish(page, REGISTRY)
    assert page.read_text() == text
