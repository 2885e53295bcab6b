"""Task `lm_text`: general running English text, for perplexity (how well a model predicts text).

Hub: Salesforce/wikitext, config wikitext-2-raw-v1, test split (one line per paragraph).
Offline: the Lee news corpus shipped in gensim's wheel (test_data/lee_background.cor): 300 short
Australian news articles, about 60,000 words of edited running prose (Lee, Pincombe & Welsh,
2005). It is clean, one article per line, and needs no markup stripping, which is why it is
preferred here over the shortened Wikipedia XML dump in the same wheel.
Schema: {"text": str}, one document (or paragraph) per row; "train"/"test" splits.
"""

from __future__ import annotations

from .. import assets
from . import Task, register

LEE_FILE = "gensim/test/test_data/lee_background.cor"
OFFLINE_TEST_DOCS = 100


def read_lee() -> list[str]:
    """The 300 Lee background articles, one string each."""
    text = assets.path("gensim", LEE_FILE).read_text(encoding="utf-8", errors="replace")
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def offline(seed: int):
    from datasets import Dataset, DatasetDict

    docs = read_lee()
    # A fixed split (first articles for test) keeps perplexities comparable across seeds and notebooks.
    return DatasetDict({
        "train": Dataset.from_dict({"text": docs[OFFLINE_TEST_DOCS:]}),
        "test": Dataset.from_dict({"text": docs[:OFFLINE_TEST_DOCS]}),
    })


def hub():
    from datasets import DatasetDict, load_dataset

    dd = load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1")
    out = {}
    for name in ("train", "test"):
        out[name] = dd[name].filter(lambda r: len(r["text"].strip()) > 0)
    return DatasetDict(out)


TASK = register(Task(
    name="lm_text",
    columns={"text": str},
    hub=hub,
    offline=offline,
    test_size=0.25,
    description="General running English text for perplexity",
    hub_source="Salesforce/wikitext (wikitext-2-raw-v1)",
    offline_source=f"gensim==4.4.0: {LEE_FILE} (Lee news corpus)",
))
