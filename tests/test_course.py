"""course: the runner executes notebooks with papermill, records figures, and fails loudly."""

from __future__ import annotations

import json

import pytest

from gptforall_utils import course, notebooks

GOOD = [("code", """from gptforall_utils import env
run = env.start("01_good", PROFILE, MODEL, DATA, OUTPUT_DIR, SEED, verbose=False)
run.record(answer=42, profile_seen=run.profile)""")]
BAD = [("code", "x = 1"), ("code", "raise RuntimeError('deliberate failure')"), ("code", "y = 2")]


def _write(folder, stem, cells):
    notebooks.write(notebooks.build(stem, stem, ["testing"], {"smoke": "1 s"}, cells), folder / f"{stem}.ipynb")


@pytest.fixture
def tiny_course(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write(folder, "01_good", GOOD)
    _write(folder, "02_bad", BAD)
    return folder


@pytest.mark.notebooks
def test_runner_records_figures_and_fails_on_a_broken_notebook(tiny_course, tmp_path):
    results = course.run_course("smoke", reports=tmp_path / "reports", notebooks_dir=tiny_course)
    by = {r.notebook: r for r in results}
    assert by["01_good"].status == "ok"
    assert by["01_good"].metrics == {"answer": 42, "profile_seen": "smoke", "profile": "smoke"}
    assert by["02_bad"].status == "failed"
    assert "deliberate failure" in by["02_bad"].error
    assert "raise RuntimeError('deliberate failure')" in by["02_bad"].error  # the failing cell, named
    report = (tmp_path / "reports" / "smoke" / "results.md").read_text()
    assert "| 01_good | ok |" in report and "**FAILED**" in report
    data = json.loads((tmp_path / "reports" / "smoke" / "results.json").read_text())
    assert [n["status"] for n in data["notebooks"]] == ["ok", "failed"]


@pytest.mark.notebooks
def test_cli_exit_code_is_nonzero_and_names_the_notebook(tiny_course, tmp_path, capsys):
    code = course.main(["run", "--profile", "smoke", "--only", "02", "--reports", str(tmp_path / "r"),
                        "--notebooks-dir", str(tiny_course)])
    assert code == 1
    assert "02_bad" in capsys.readouterr().err


def test_only_filter_rejects_unknown_notebooks(tiny_course):
    assert [p.stem for p in course.discover(tiny_course, ["01"])] == ["01_good"]
    with pytest.raises(ValueError, match="07"):
        course.discover(tiny_course, ["07"])


def test_a_notebook_that_records_nothing_fails(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    _write(folder, "03_silent", [("code", "print('no metrics')")])
    result = course.run_notebook(folder / "03_silent.ipynb", "smoke", tmp_path / "reports")
    assert result.status == "failed" and "metrics.json" in result.error


@pytest.mark.notebooks
def test_report_keeps_notebooks_not_rerun(tiny_course, tmp_path):
    reports = tmp_path / "reports"
    course.run_course("smoke", reports=reports, notebooks_dir=tiny_course)
    course.run_course("smoke", only=["01"], reports=reports, notebooks_dir=tiny_course)
    data = json.loads((reports / "smoke" / "results.json").read_text())
    assert [n["notebook"] for n in data["notebooks"]] == ["01_good", "02_bad"]


@pytest.mark.notebooks
def test_kernels_run_encrypted_and_do_not_warn_about_it(tmp_path, capfd):
    """The runner's progress carries no "Kernel is running over TCP without encryption" line per notebook:
    the kernel gets CurveZMQ keys, so the warning's cause is gone, not the warning hidden."""
    folder = tmp_path / "nb"
    folder.mkdir()
    _write(folder, "01_good", GOOD)
    assert course.kernel_manager_class() is not None          # pyzmq has Curve here (as in CI)
    result = course.run_notebook(folder / "01_good.ipynb", "smoke", tmp_path / "reports")
    assert result.status == "ok", result.error
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err
