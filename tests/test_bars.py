"""bars: the learning bars live in one place, read by the course runner (`make course`) and by the tests."""

from __future__ import annotations

import json
import re

import pytest

from gptforall_utils import bars, course, notebooks

PASSING_04 = dict(n_eval=200, accuracy_lora=0.9, accuracy_zero_shot=0.6, lora_first_loss=2.0, lora_final_loss=0.3)


def _code(number: str) -> str:
    path = next(p for p in course.discover() if p.stem.startswith(number))
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("bar", bars.BARS, ids=lambda b: f"{b.notebook}:{b.check[:40]}")
def test_every_bar_reads_figures_its_notebook_records(bar):
    compile(bar.check, "<bar>", "eval")
    assert bar.profiles and set(bar.profiles) <= {"cpu", "gpu"}, bar  # smoke has no bars
    code = _code(bar.notebook)
    # Keys built in the notebook as f-strings (f"rougeL_{name}") match any word where the braces stand.
    patterns = [re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(f)) for f in re.findall(r"\bf[\"']([^\"'\n]+)[\"']", code)]
    for name in bar.names():
        # Recorded as a keyword of run.record (name=...), as a key ("name"), or as an f-string key.
        literal = re.search(rf"\b{name}\s*=|[\"']{name}[\"']", code)
        assert literal or any(re.fullmatch(p, name) for p in patterns), (bar.notebook, name)


def test_evaluate_holds_short_missing_and_non_finite():
    bar = bars.Bar("04", "accuracy_lora >= 0.85", "test")
    assert bars.evaluate(bar, {"accuracy_lora": 0.9}).status == "holds"
    short = bars.evaluate(bar, {"accuracy_lora": 0.8})
    assert short.status == "short" and short.values == {"accuracy_lora": 0.8}
    missing = bars.evaluate(bar, {})
    assert missing.status == "missing" and missing.values == {"accuracy_lora": "not recorded"}
    assert bars.evaluate(bar, {"accuracy_lora": float("nan")}).status == "short"


def test_bars_by_profile_and_notebook():
    assert bars.for_notebook("04_sentiment_classification", "smoke") == []
    assert bars.for_notebook("04_sentiment_classification_solutions", "cpu") == []
    cpu, gpu = bars.for_notebook("04", "cpu"), bars.for_notebook("04", "gpu")
    assert {b.check for b in gpu} < {b.check for b in cpu}  # size checks are the cpu profile's
    assert "accuracy_lora >= 0.85" in {b.check for b in gpu}
    assert bars.failures("04", "cpu", PASSING_04) == []
    assert bars.failures("04", "cpu", {**PASSING_04, "lora_final_loss": 2.5}) == [
        "lora_final_loss < lora_first_loss (short: lora_final_loss=2.5, lora_first_loss=2)",
        "lora_final_loss < 0.5 (short: lora_final_loss=2.5)"]
    assert len(bars.failures("04", "cpu", None)) == len(cpu)  # a failed notebook: every bar is missing


def _course(tmp_path, figures: dict):
    folder = tmp_path / "notebooks"
    folder.mkdir(parents=True)
    record = ", ".join(f"{k}={v!r}" for k, v in figures.items())
    cells = [("code", "from gptforall_utils import env\n"
                      f"run = env.start('04_fake', PROFILE, MODEL, DATA, OUTPUT_DIR, SEED, verbose=False)\n"
                      f"run.record({record})")]
    notebooks.write(notebooks.build("04_fake", "04_fake", ["testing"], {"cpu": "1 s"}, cells),
                    folder / "04_fake.ipynb")
    return folder


@pytest.mark.notebooks
def test_make_course_ends_with_the_bar_table_and_fails_on_a_short_bar(tmp_path, capsys):
    good = _course(tmp_path / "good", PASSING_04)
    code = course.main(["run", "--profile", "cpu", "--reports", str(tmp_path / "r1"), "--notebooks-dir", str(good)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Learning bars: 5 of 5 hold" in out.out
    report = (tmp_path / "r1" / "cpu" / "results.md").read_text()
    assert "## Learning bars" in report and "5 of 5 bars hold." in report
    assert "| 04 | `accuracy_lora >= 0.85`" in report
    assert json.loads((tmp_path / "r1" / "cpu" / "results.json").read_text())["bars"][1]["status"] == "holds"
    # The same course with LoRA short of its bar: non-zero exit, the bar named.
    bad = _course(tmp_path / "bad", {**PASSING_04, "accuracy_lora": 0.65})
    code = course.main(["run", "--profile", "cpu", "--reports", str(tmp_path / "r2"), "--notebooks-dir", str(bad)])
    err = capsys.readouterr().err
    assert code == 1
    assert "BAR SHORT in 04: accuracy_lora >= 0.85 (LoRA classifies sentiment well; accuracy_lora=0.65)" in err
    assert "**2 fall short**" in (tmp_path / "r2" / "cpu" / "results.md").read_text()  # and >= zero-shot + 0.08
    # `course bars` checks an existing report again, with the same verdict.
    assert course.main(["bars", "--profile", "cpu", "--reports", str(tmp_path / "r2")]) == 1
    assert course.main(["bars", "--profile", "cpu", "--reports", str(tmp_path / "r1")]) == 0
