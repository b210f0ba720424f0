"""docs/results.md and docs/speed.md are rendered from bench/results/*.json (bench/render.py):
the committed tables are exactly what their JSON renders, and a changed figure shows."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("render", REPO / "bench" / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)


def test_committed_tables_are_what_their_json_renders():
    results = render.load_results(render.RESULTS)
    for page in render.PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        assert render.MARKERS.search(text), f"{page} has no rendered table"
        assert render.render(text, results) == text, f"{page} differs from bench/results/: run python bench/render.py"


def test_every_marker_names_a_table():
    for page in render.PAGES:
        names = [m["name"] for m in render.MARKERS.finditer((REPO / page).read_text(encoding="utf-8"))]
        assert set(names) <= set(render.TABLES), f"{page}: unknown tables {set(names) - set(render.TABLES)}"


def test_a_changed_figure_changes_the_page(tmp_path):
    shutil.copytree(render.RESULTS, tmp_path / "results")
    path = tmp_path / "results" / "accuracy-demo.json"
    record = json.loads(path.read_text())
    record["figures"]["runs"][0]["test_f1"] = 12.34
    path.write_text(json.dumps(record))
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    rendered = render.render(page, render.load_results(tmp_path / "results"))
    assert rendered != page and "**12.34**" in rendered


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for page in render.PAGES:
        (tmp_path / page).write_text((REPO / page).read_text(encoding="utf-8").replace("| ", "|  ", 1))
    monkeypatch.setattr(render, "REPO", tmp_path)
    assert render.main(["--check"]) == 1
    assert "docs/results.md: out of date" in capsys.readouterr().err


def test_a_commit_with_changed_code_is_marked_but_not_one_with_new_figures(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import results

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "train.py").write_text("code\n")
    (tmp_path / "bench" / "results" / "a.json").write_text("{}\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    monkeypatch.setattr(results, "REPO", tmp_path)
    monkeypatch.setattr(results, "RESULTS", tmp_path / "bench" / "results")
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "bench" / "results" / "a.json").write_text('{"f1": 1}\n')  # a previous run's figures
    assert results.this_commit() == head
    (tmp_path / "train.py").write_text("changed code\n")
    assert results.this_commit() == head + "+changes"
