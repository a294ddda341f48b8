"""Copy buttons are script-driven: each is rendered hidden and shown by the script that answers
it, so nobody presses one that does nothing yet (a deferred script not run, on a slow line)."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "webapp" / "templates"
BUTTON = re.compile(r"<button\b[^>]*\bdata-copy=[^>]*>")


def _pages_with_copy_buttons() -> dict[Path, list[str]]:
    found = {}
    for template in sorted(TEMPLATES.rglob("*.html")):
        buttons = BUTTON.findall(template.read_text())
        if buttons:
            found[template] = buttons
    return found


def test_copy_buttons__every_one__hidden_until_its_script_runs():
    pages = _pages_with_copy_buttons()
    # Given every template with a copy button (at least the keys page and the issued link)
    assert len(pages) >= 2, sorted(p.name for p in pages)
    for template, buttons in pages.items():
        text = template.read_text()
        name = template.relative_to(TEMPLATES)
        # Then it loads the one copy script, and each button starts hidden
        assert "js/copy.js" in text, f"{name} has a copy button but does not load js/copy.js"
        for button in buttons:
            assert re.search(r"\shidden[\s>]", button), f"{name}: {button} is not hidden"


def test_copy_script__reveals_what_it_answers():
    script = (TEMPLATES.parent / "static" / "js" / "copy.js").read_text()
    # The selector the script reveals is the one it answers clicks on
    assert 'querySelectorAll("button[data-copy][hidden]")' in script
    assert 'closest("button[data-copy]")' in script
