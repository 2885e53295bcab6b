"""scripts/update_readme_map.py rewrites only the course map between the markers, with titles,
badges and the measured times of each profile ("—" where not measured)."""

from __future__ import annotations

import importlib.util
import json
import re
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


def _gpu_report(folder, rows, gpu="NVIDIA H100 80GB HBM3", precision="unset", memory="unset", profile="gpu"):
    folder.mkdir(parents=True)
    environment = {"device": "cuda", "gpu": gpu, "GPTFORALL_PRECISION": precision, "GPTFORALL_GPU_MEMORY_GB": memory}
    (folder / "results.json").write_text(json.dumps({"profile": profile, "environment": environment, "notebooks": [
        {"notebook": n, "status": s, "seconds": t, "metrics": {}} for n, s, t in rows]}))


def test_gpu_times_appear_when_measured_labelled_with_the_card(repo):
    root, readme = repo
    _gpu_report(root / "reports" / "gpu", [("04_sentiment", "ok", 150.0)])
    readme_map.update(readme, root)
    sentiment = _rows(readme.read_text())[1]
    assert sentiment.split("|")[-2].strip() == "2.5 min (H100)"
    assert "measured: smoke, cpu, gpu (H100)" in readme.read_text()


def test_a_report_without_its_environment_is_not_given_a_card(repo):
    root, readme = repo
    (root / "reports" / "gpu").mkdir()
    (root / "reports" / "gpu" / "results.json").write_text(json.dumps(
        {"notebooks": [{"notebook": "04_sentiment", "status": "ok", "seconds": 150.0, "metrics": {}}]}))
    readme_map.update(readme, root)
    assert _rows(readme.read_text())[1].split("|")[-2].strip() == "2.5 min (card not recorded)"


def test_gpu_session_streams_are_labelled_as_card_and_t4_emulated_never_t4(repo):
    """gpu_session.sh's streams (reports/gpu-card, reports/gpu-t4emulated) and the copies it keeps in
    benchmarks/results/gpu_session/: each time names the card; a T4's settings on an H100 are not a T4."""
    root, readme = repo
    _gpu_report(root / "reports" / "gpu-card" / "gpu", [("04_sentiment", "ok", 72.0), ("00_welcome", "failed", 5.0)])
    _gpu_report(root / "reports" / "gpu-t4emulated" / "gpu", [("04_sentiment", "ok", 95.0)],
                precision="fp16", memory="15")
    kept = root / "benchmarks" / "results" / "gpu_session"
    _gpu_report(kept / "gpu-card", [("04_sentiment", "ok", 999.0), ("00_welcome", "ok", 20.0)])  # same label: reports/ wins
    _gpu_report(kept / "gpu-smoke-1", [("00_welcome", "ok", 3.0)], profile="smoke")              # not a gpu-profile run
    readme_map.update(readme, root)
    text = readme.read_text()
    welcome, sentiment = _rows(text)
    assert sentiment.split("|")[-2].strip() == "72 s (H100) · 1.6 min (H100, T4-emulated)"
    assert welcome.split("|")[-2].strip() == "20 s (H100)"
    assert "gpu (H100; H100, T4-emulated)" in text
    assert not re.search(r"\(T4\b", text)


@pytest.mark.parametrize("environment, label", [
    ({"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "GPTFORALL_PRECISION": "unset",
      "GPTFORALL_GPU_MEMORY_GB": "unset"}, "H100"),
    ({"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "GPTFORALL_PRECISION": "fp16",
      "GPTFORALL_GPU_MEMORY_GB": "15"}, "H100, T4-emulated"),
    ({"device": "cuda", "gpu": "NVIDIA H200", "GPTFORALL_PRECISION": "fp16", "GPTFORALL_GPU_MEMORY_GB": "40"},
     "H200, fp16, 40 GiB cap"),
    ({"device": "cuda", "gpu": "NVIDIA A100-SXM4-40GB", "GPTFORALL_PRECISION": "fp16",
      "GPTFORALL_GPU_MEMORY_GB": "unset"}, "A100, fp16"),
    ({"device": "cuda", "gpu": "Tesla T4", "GPTFORALL_PRECISION": "unset", "GPTFORALL_GPU_MEMORY_GB": "unset"}, "T4"),
    ({"device": "cuda", "gpu": "Tesla T4", "GPTFORALL_PRECISION": "fp16", "GPTFORALL_GPU_MEMORY_GB": "15"},
     "T4, fp16, 15 GiB cap"),
    ({"device": "cuda", "gpu": "NVIDIA L4"}, "L4"),
    ({"device": "cpu", "GPTFORALL_PRECISION": "fp16"}, "CPU"),
    ({}, "card not recorded"),
])
def test_gpu_label_names_the_card_and_what_emulated_it(environment, label):
    assert readme_map.gpu_label(environment) == label


def test_missing_markers_are_refused(repo):
    root, readme = repo
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="course-map:start"):
        readme_map.update(readme, root)
