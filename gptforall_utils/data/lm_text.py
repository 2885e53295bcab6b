"""Task `lm_text`: general running English text, for perplexity (how well a model predicts text).

Hub: Salesforce/wikitext, config wikitext-2-raw-v1, test split (one line per paragraph).
Offline: the Lee news corpus shipped in gensim's wheel (test_data/lee_background.cor): 300 short
Australian news articles, about 60,000 words of edited running prose (Lee, Pincombe & Welsh,
2005). It is clean, one article per line, and needs no markup stripping, which is why it is
preferred here over the shortened Wikipedia XML dump in the same wheel.
Schema: {"text": str}, one document (or paragraph) per row; "train"/"test" splits. Blank rows
(WikiText's paragraph breaks: "" rows) carry no text and are dropped from every source, with a
printed count, so a local file in WikiText's own layout works as it is.
"""

from __future__ import annotations

from .. import assets
from . import Task, hub_dataset, register

LEE_FILE = "gensim/test/test_data/lee_background.cor"
HUB_ID, HUB_CONFIG = "Salesforce/wikitext", "wikitext-2-raw-v1"
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


def from_native(dataset, origin: str = "data"):
    """Drop blank rows (paragraph breaks in WikiText's layout: "" rows), saying how many."""
    if "text" not in dataset.column_names:
        return dataset
    blank = [i for i, t in enumerate(dataset["text"]) if isinstance(t, str) and not t.strip()]
    if not blank:
        return dataset
    drop = set(blank)
    print(f"{origin}: {len(blank)} blank row(s) (paragraph breaks) dropped, {len(dataset) - len(blank)} kept")
    return dataset.select([i for i in range(len(dataset)) if i not in drop])


def hub():
    from datasets import DatasetDict

    dd = hub_dataset(HUB_ID, HUB_CONFIG)  # test 4,358 / train 36,718 / validation 3,760 lines
    return DatasetDict({name: from_native(dd[name], f"{HUB_ID} ({name})") for name in ("train", "test")})


TASK = register(Task(
    name="lm_text",
    columns={"text": str},
    hub=hub,
    offline=offline,
    test_size=0.25,
    description="General running English text for perplexity",
    hub_source="Salesforce/wikitext (wikitext-2-raw-v1)",
    hub_datasets=((HUB_ID, HUB_CONFIG),),
    from_native=from_native,
    offline_source=f"gensim==4.4.0: {LEE_FILE} (Lee news corpus)",
    distinct_examples=False,  # running text: a repeated line (a section heading) is text, not a duplicate example
))
