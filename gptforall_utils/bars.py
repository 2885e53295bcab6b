"""The course's learning bars, in one place: what each notebook's figures must show in the cpu and gpu profiles.

A bar is a Python expression over the names a notebook records in its metrics.json (`run.record`), e.g.
`accuracy_lora >= 0.85`. The course runner (`python -m gptforall_utils.course run`, `make course`) checks the bars
of every notebook it ran against that run's metrics.json, writes the table into results.md, prints it, and exits
non-zero when a bar falls short; `python -m gptforall_utils.course bars --profile cpu` checks an existing report
again. The tests (`make test-bars`, and notebook 04's in `make test`) assert the same bars through `failures`.

The smoke profile has no bars: its sizes prove that every code path runs, not that learning happens. A bar names
the profiles it holds in: size checks (how many examples) are the cpu profile's; learning bars hold in both.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

LEARNING_PROFILES = ("cpu", "gpu")


@dataclass(frozen=True)
class Bar:
    """One bar: `check` is an expression over the notebook's recorded figures; `why` says what it shows."""

    notebook: str                      # the notebook's number, e.g. "04"
    check: str
    why: str
    profiles: tuple[str, ...] = LEARNING_PROFILES

    def names(self) -> list[str]:
        """The recorded figures the expression reads, in order of appearance."""
        seen = []
        for node in ast.walk(ast.parse(self.check, mode="eval")):
            if isinstance(node, ast.Name) and node.id not in _FUNCTIONS and node.id not in seen:
                seen.append(node.id)
        return seen


def _wilson_low(accuracy: float, n: int) -> float:
    from .metrics import wilson_interval

    return wilson_interval(round(accuracy * n), n)[0]


def _wilson_high(accuracy: float, n: int) -> float:
    from .metrics import wilson_interval

    return wilson_interval(round(accuracy * n), n)[1]


# What an expression may call besides the recorded names.
_FUNCTIONS = {"abs": abs, "min": min, "max": max, "wilson_low": _wilson_low, "wilson_high": _wilson_high}

BARS: tuple[Bar, ...] = (
    # 04: the course's proof that learning happens (also asserted in `make test`, marker cpu_profile).
    Bar("04", "n_eval >= 200", "accuracy is measured on at least 200 held-out reviews", ("cpu",)),
    Bar("04", "accuracy_lora >= 0.85", "LoRA classifies sentiment well"),
    Bar("04", "accuracy_lora >= accuracy_zero_shot + 0.08", "LoRA beats zero-shot by at least 8 points"),
    Bar("04", "lora_final_loss < lora_first_loss", "the training loss falls"),
    Bar("04", "lora_final_loss < 0.5", "the training loss ends low", ("cpu",)),
    # 05
    Bar("05", "n_eval == 40", "ROUGE is measured on the whole offline test split", ("cpu",)),
    Bar("05", "rougeL_lora >= rougeL_zero_shot + 0.05", "LoRA summaries beat zero-shot by 5 ROUGE-L points"),
    # 06
    Bar("06", "n_eval == 35 and n_train == 326", "the whole offline test and train splits", ("cpu",)),
    Bar("06", "response_loss_after <= 0.9 * response_loss_before", "SFT lowers the held-out response loss by 10%"),
    Bar("06", "eos_rate_after >= 0.9", "after SFT, nine answers in ten stop at the end of turn"),
    # 07
    Bar("07", "n_eval >= 50", "accuracy is measured on at least 50 held-out abstracts", ("cpu",)),
    Bar("07", "accuracy_lora > accuracy_zero_shot", "LoRA beats zero-shot"),
    Bar("07", "accuracy_lora - accuracy_zero_shot > 2 * ci95_lora", "...by more than the width of its 95% interval",
        ("cpu",)),
    Bar("07", "mcnemar_p_lora_vs_zero_shot < 0.01", "...and the paired test agrees", ("cpu",)),
    # 08
    Bar("08", "mc_questions >= 200", "the benchmark has a few hundred questions", ("cpu",)),
    Bar("08", "abs(mc_accuracy_base_low - wilson_low(mc_accuracy_base, mc_questions)) < 1e-9 and "
              "abs(mc_accuracy_base_high - wilson_high(mc_accuracy_base, mc_questions)) < 1e-9 and "
              "abs(mc_accuracy_tuned_low - wilson_low(mc_accuracy_tuned, mc_questions)) < 1e-9 and "
              "abs(mc_accuracy_tuned_high - wilson_high(mc_accuracy_tuned, mc_questions)) < 1e-9",
        "the recorded accuracy intervals are the Wilson intervals of their counts"),
    Bar("08", "mc_accuracy_base_high - mc_accuracy_base_low < 0.15 and "
              "mc_accuracy_tuned_high - mc_accuracy_tuned_low < 0.15",
        "a few hundred questions pin accuracy to within about 6 points", ("cpu",)),
    Bar("08", "mc_accuracy_base_low > mc_chance", "the base model is above guessing beyond its interval"),
    Bar("08", "0 < mc_mcnemar_p <= 1 and mc_only_base + mc_only_tuned > 0",
        "tuning changed some answers, and the paired test is computed"),
    Bar("08", "perplexity_tokens >= 5000 and perplexity_documents >= 20",
        "perplexity is measured over thousands of tokens and many documents", ("cpu",)),
    Bar("08", "perplexity_change_low <= perplexity_change <= perplexity_change_high",
        "the perplexity change lies inside its paired bootstrap interval"),
    Bar("08", "abs(perplexity_tuned - perplexity_base) > 1e-3 * perplexity_base", "tuning changed the model"),
    Bar("08", "standin_position_first_order_tuned_wins == 0 and standin_position_consistency == 0",
        "the order swap catches the position-biased judge"),
    Bar("08", "standin_length_consistency == 1 and standin_length_longer_decided >= 8 and "
              "standin_length_longer_share == 1 and standin_length_longer_low > 0.5",
        "the length control catches the length-biased judge"),
    # 09
    Bar("09", "heldout_pairs_qa >= 10 and heldout_pairs_creative >= 10",
        "each adapter is judged on at least 10 held-out pairs", ("cpu",)),
    Bar("09", "heldout_loss_after_qa <= 0.95 * heldout_loss_base_qa",
        "the qa adapter lowers the held-out loss of its categories by 5%"),
    Bar("09", "heldout_loss_after_creative <= 0.95 * heldout_loss_base_creative",
        "the creative adapter lowers the held-out loss of its categories by 5%"),
    Bar("09", "distinct_words_qa >= 0.5 and distinct_words_creative >= 0.5", "the answers do not loop"),
    Bar("09", "mixed_batch_matches == 1 and served_matches_merged == 1 and merged_same_greedy == 1",
        "a mixed-adapter batch answers as each request alone, and merging changes no answer"),
    # 10
    Bar("10", "n_test == 35", "the whole offline test split, never trained on", ("cpu",)),
    Bar("10", "preference_accuracy_after >= 0.75", "DPO ranks three held-out pairs in four the right way"),
    Bar("10", "reward_margin_after > reward_margin_before", "the implicit reward margin grows"),
    Bar("10", "loss_check_abs_diff < 1e-4", "the hand-written DPO loss equals TRL's"),
    # 11
    Bar("11", "abs(q8_0_perplexity_change) < 0.02", "Q8_0 keeps perplexity within 2%"),
    Bar("11", "abs(four_bit_perplexity_change) < 0.10", "the 4-bit file keeps perplexity within 10%"),
    Bar("11", "perplexity_wanda_50 < perplexity_magnitude_50", "Wanda beats magnitude pruning at 50% sparsity"),
    Bar("11", "accuracy_lora > accuracy_zero_shot", "the adapter has a real task effect to export"),
    Bar("11", "f16_logit_diff_vs_fp16_rounded == 0 and f16_same_greedy == 1",
        "the F16 file holds exactly the fp16-rounded weights"),
    Bar("11", "q8_0_update_kept > 0.9", "Q8_0 keeps the fine-tune"),
    Bar("11", "not base_on_q4_1_grid or q4_1_update_kept < 0.5 < q4_0_update_kept",
        "on the embedded base (already on a Q4_1 grid), Q4_1 rounds most of the fine-tune away"),
)


@dataclass
class BarResult:
    """A bar checked against one run: status "holds", "short" (the expression is false) or "missing" (a figure
    it reads was not recorded, or the notebook failed)."""

    bar: Bar
    status: str
    values: dict

    @property
    def holds(self) -> bool:
        return self.status == "holds"

    def describe_values(self) -> str:
        def fmt(v):
            return f"{v:.4g}" if isinstance(v, float) else str(v)

        return ", ".join(f"{k}={fmt(v)}" for k, v in self.values.items())


def for_notebook(notebook: str, profile: str) -> list[Bar]:
    """The bars of a notebook (its number or stem, e.g. "04" or "04_sentiment_classification") in a profile.
    Solutions notebooks have none."""
    if "solutions" in notebook:
        return []
    number = notebook[:2]
    return [b for b in BARS if b.notebook == number and profile in b.profiles]


def evaluate(bar: Bar, metrics: dict) -> BarResult:
    """Check one bar against a notebook's recorded figures."""
    values = {name: metrics[name] for name in bar.names() if name in metrics}
    missing = [name for name in bar.names() if name not in metrics]
    if missing:
        return BarResult(bar, "missing", {**values, **{name: "not recorded" for name in missing}})
    bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        return BarResult(bar, "short", values)
    namespace = {"__builtins__": {}, **_FUNCTIONS, **values}
    ok = bool(eval(compile(bar.check, f"<bar {bar.notebook}>", "eval"), namespace))  # noqa: S307 (our own text)
    return BarResult(bar, "holds" if ok else "short", values)


def check(notebook: str, profile: str, metrics: dict | None) -> list[BarResult]:
    """Every bar of `notebook` in `profile` against its figures (None: the notebook failed, every bar is missing)."""
    return [evaluate(bar, metrics or {}) for bar in for_notebook(notebook, profile)]


def failures(notebook: str, profile: str, metrics: dict | None) -> list[str]:
    """The bars that do not hold, one line each (empty when all hold): what the tests assert."""
    return [f"{r.bar.check} ({r.status}: {r.describe_values()})" for r in check(notebook, profile, metrics)
            if not r.holds]


def table(results: list[BarResult]) -> list[str]:
    """Markdown lines: one row per bar with the figures it read and whether it holds."""
    lines = ["| notebook | bar | figures | status |", "| --- | --- | --- | --- |"]
    for r in results:
        status = "holds" if r.holds else f"**{r.status.upper()}**"
        lines.append(f"| {r.bar.notebook} | `{r.bar.check}`<br>{r.bar.why} | {r.describe_values()} | {status} |")
    return lines
