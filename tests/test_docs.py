"""Docs that are tested: every command is documented, the auditor's snippet really verifies."""

import re
import subprocess
import sys
from pathlib import Path

import click

from cli import main

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def command_paths(group: click.Group, prefix: str = "appliance") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += command_paths(command, f"{prefix} {name}")
        else:
            paths.append(f"{prefix} {name}")
    return paths


def test_every_command_is_documented():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### (.+)$", text, re.M)
    documented = " ".join(headings)
    missing = [p for p in command_paths(main) if f"`{p}" not in documented]
    assert missing == []


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:1500]
    assert "make run" in head and "make test" in head
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_every_doc_link_resolves():
    for doc in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_the_auditors_snippet_in_journal_md_verifies_a_real_journal(site, data_dir):
    for i in range(30):
        site.journal.record("staff.note", {"text": f"记录{i}\n\t\"引号\""})
    text = (DOCS / "journal.md").read_text(encoding="utf-8")
    snippet = re.search(r"## Verifying without this software.*?```python\n(.*?)```", text, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=data_dir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("records 31 head ")
    assert proc.stdout.splitlines()[0].split()[-1] == site.journal.current_head()[1]
    from appliance.keys import fingerprint

    assert proc.stdout.splitlines()[1] == f"key fingerprint {fingerprint(site.public_key)}"
