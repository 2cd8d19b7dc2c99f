"""The message catalogues. The maintained catalogue is zh_Hans_CN/LC_MESSAGES/messages.po
(English source texts, Simplified Chinese translations); English needs no catalogue.

    python kiosk_ui/translations/build.py compile   # .po → .mo; run by `make install`
    python kiosk_ui/translations/build.py update    # extract texts from code and templates,
                                                    # merge new ones into the .po for translation

`compile` refuses a catalogue with an untranslated or fuzzy entry, and tests/test_i18n.py
fails when the code has a text the catalogue lacks, so no screen text ships untranslated.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent
PO = HERE / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def extract() -> Catalog:
    """Every translatable text in kiosk_ui and center (Python and Jinja templates)."""
    template = Catalog()
    for folder in (HERE.parent, HERE.parent.parent / "center"):  # center/: the province's pages
        for _filename, _lineno, message, _comments, _context in extract_from_dir(str(folder), METHODS, keywords=KEYWORDS):
            template.add(message)
    return template


def load() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f)


def problems(catalog: Catalog) -> list[str]:
    out = []
    for message in catalog:
        if not message.id:
            continue
        if not message.string:
            out.append(f"untranslated: {message.id!r}")
        elif message.fuzzy:
            out.append(f"fuzzy: {message.id!r}")
    return out


def compile_catalogue() -> None:
    catalog = load()
    bad = problems(catalog)
    if bad:
        sys.exit("cannot compile the catalogue:\n  " + "\n  ".join(bad))
    with PO.with_suffix(".mo").open("wb") as f:
        write_mo(f, catalog)


def update() -> None:
    catalog = load()
    catalog.update(extract(), no_fuzzy_matching=True)
    with tempfile.NamedTemporaryFile("wb", dir=PO.parent, delete=False) as f:
        write_po(f, catalog, sort_output=True, ignore_obsolete=True, width=100)
    Path(f.name).replace(PO)
    for line in problems(catalog):
        print(line)


if __name__ == "__main__":
    {"compile": compile_catalogue, "update": update}[sys.argv[1] if len(sys.argv) > 1 else "compile"]()
