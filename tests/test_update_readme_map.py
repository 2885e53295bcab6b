"""scripts/update_readme_map.py rewrites only the course map between the markers, with titles,
badges and the measured times of each profile ("—" where not measured)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from gptforall_utils import notebooks

spec = importlib.util.spec_from_file_location("update_readme_map", notebooks.ROOT / "scripts" / "update_readme_map.py")
readme_map = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_map)


@pytest.fixture
def repo(tmp_path):
    shutil.copy(notebooks.ROOT / "pyproject.toml", tmp_path)
    shutil.copy(notebooks.ROOT / "requirements.txt", tmp_path)
    (tmp_path / "notebooks" / "solutions").mkdir(parents=True)
    for stem, title in [("00_welcome", "00 · Welcome"), ("04_sentiment", "04 · Sentiment with LoRA")]:
        nb = notebooks.build(stem, title, ["x"], {"smoke": "1 s"}, [("code", "print(1)")], root=tmp_path)
        notebooks.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    sol = notebooks.build("04_sentiment_solutions", "04 · solutions", ["x"], {"smoke": "1 s"}, [],
                          folder="notebooks/solutions", root=tmp_path)
    notebooks.write(sol, tmp_path / "notebooks" / "solutions" / "04_sentiment_solutions.ipynb")
    for profile, rows in {
        "smoke": [("00_welcome", "ok", 12.3), ("04_sentiment", "ok", 45.0)],
        "cpu": [("00_welcome", "ok", 30.0), ("04_sentiment", "failed", 200.0)],
    }.items():
        (tmp_path / "reports" / profile).mkdir(parents=True)
        (tmp_path / "reports" / profile / "results.json").write_text(json.dumps({"notebooks": [
            {"notebook": n, "status": s, "seconds": t, "metrics": {}} for n, s, t in rows]}))
    readme = tmp_path / "README.md"
    readme.write_text("# Course\n\nintro\n\n<!-- course-map:start -->\nold table\n<!-- course-map:end -->\n\nfooter\n")
    return tmp_path, readme


def _rows(text):
    body = text.split(readme_map.START)[1].split(readme_map.END)[0]
    return [line for line in body.splitlines() if line.startswith("| 0")]


def test_map_has_titles_badges_and_measured_times(repo):
    root, readme = repo
    assert readme_map.update(readme, root) is True
    text = readme.read_text()
    assert text.startswith("# Course\n\nintro\n\n") and text.endswith("\n\nfooter\n")
    assert "old table" not in text
    welcome, sentiment = _rows(text)
    assert "00 · Welcome" in welcome and notebooks.badge("00_welcome", root) in welcome
    cells = [c.strip() for c in welcome.split("|")[-4:-1]]
    assert cells == ["12 s", "30 s", "—"]
    cells = [c.strip() for c in sentiment.split("|")[-4:-1]]
    assert cells == ["45 s", "—", "—"]  # a failed cpu run is not a measured time
    assert "solutions/04_sentiment_solutions.ipynb" in sentiment
    assert "solutions" not in welcome


def test_second_run_changes_nothing(repo):
    root, readme = repo
    readme_map.update(readme, root)
    before = readme.read_text()
    assert readme_map.update(readme, root) is False
    assert readme.read_text() == before


def test_gpu_times_appear_when_measured(repo):
    root, readme = repo
    (root / "reports" / "gpu").mkdir()
    (root / "reports" / "gpu" / "results.json").write_text(json.dumps(
        {"notebooks": [{"notebook": "04_sentiment", "status": "ok", "seconds": 150.0, "metrics": {}}]}))
    readme_map.update(readme, root)
    sentiment = _rows(readme.read_text())[1]
    assert sentiment.split("|")[-2].strip() == "2.5 min"


def test_missing_markers_are_refused(repo):
    root, readme = repo
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="course-map:start"):
        readme_map.update(readme, root)
