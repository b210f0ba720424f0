"""infer.py --html: a self-contained page with entities highlighted by type, checked in a real
headless browser where one is installed (CI installs Debian's chromium)."""

import re
import shutil
import subprocess

import pytest

from bert_ner.htmlview import TYPE_COLOURS, colours, highlighted, page
from infer import main as infer
from tests.test_infer import SENTENCE

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)


def test_highlighted_escapes_text_and_marks_entities():
    text = "<b>Anna</b> & Oslo"
    entities = [
        {"entity_group": "PER", "start": 3, "end": 7, "score": 0.9123},
        {"entity_group": "LOC", "start": 14, "end": 18, "score": 0.5},
    ]
    out = highlighted(text, entities, colours(["PER", "LOC"]))
    assert out.startswith("&lt;b&gt;<mark ")
    assert 'title="PER 0.9123"' in out and f"background:{TYPE_COLOURS['PER']}" in out
    assert re.sub(
        r"<[^>]+>", "", out.replace('<span class="type">PER</span>', "").replace('<span class="type">LOC</span>', "")
    ) == ("&lt;b&gt;Anna&lt;/b&gt; &amp; Oslo")


def test_types_beyond_conll_get_their_own_colours():
    assigned = colours(["PER", "DRUG", "GENE"])
    assert assigned["PER"] == TYPE_COLOURS["PER"] and len({assigned["DRUG"], assigned["GENE"], assigned["PER"]}) == 3


def test_page_loads_nothing_from_anywhere():
    text = page([("Anna sang", [{"entity_group": "PER", "start": 0, "end": 4, "score": 0.9}]), ("nothing", [])])
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(", text)
    assert "(no entities)" in text


def test_infer_writes_the_page_and_still_prints(demo_run, tmp_path, capsys):
    out = tmp_path / "entities.html"
    assert infer(["--model", str(demo_run), "--html", str(out), SENTENCE]) == 0
    assert "Anna Schmidt" in capsys.readouterr().out
    text = out.read_text()
    assert text.count("<mark ") == 3 and 'data-score="PER ' in text


@pytest.mark.parametrize("where, message", [("{tmp}", "is a directory"), ("{tmp}/no/such/dir/x.html", "no directory")])
def test_bad_html_path_fails_before_the_model_loads(demo_run, tmp_path, capsys, where, message):
    assert infer(["--model", str(demo_run), "--html", where.format(tmp=tmp_path), SENTENCE]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here: apt-get install chromium (CI installs it)")
def test_page_renders_in_a_headless_browser(demo_run, tmp_path, capsys):
    """Screenshot the page with chromium offline and look for each entity type's colour in it."""
    from matplotlib.image import imread

    out = tmp_path / "entities.html"
    assert infer(["--model", str(demo_run), "--html", str(out), SENTENCE]) == 0
    shot = tmp_path / "page.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,400",
        f"--screenshot={shot}",
        out.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    pixels = (imread(shot)[:, :, :3] * 255).round().astype(int)
    for kind in ("PER", "ORG", "LOC"):
        rgb = [int(TYPE_COLOURS[kind][i : i + 2], 16) for i in (1, 3, 5)]
        matches = (abs(pixels - rgb).sum(axis=2) <= 6).sum()
        assert matches > 200, f"{kind} highlight not visible in the screenshot ({matches} pixels)"
