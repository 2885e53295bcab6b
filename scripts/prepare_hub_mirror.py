"""Prepare a Hub mirror for a workshop without network: download the course's Hub datasets and models once.

    python scripts/prepare_hub_mirror.py ~/gptforall-mirror          # every task's datasets + the 135M and 360M models
    python scripts/prepare_hub_mirror.py ~/gptforall-mirror --tasks medical --models smollm2-1.7b-instruct
    GPTFORALL_HUB_MIRROR=~/gptforall-mirror make course               # afterwards: the Hub path, from disk

Needs the Hugging Face Hub once (HF_HUB_OFFLINE unset). Writes, per dataset, <mirror>/<org>__<name>[__<config>]/
with schema.json and one <split>.jsonl per split (what `datasets.load_dataset` returned), and per model
<mirror>/<org>__<name>/ with the model's top-level files from the Hub; the layout is in data/README.md.
With GPTFORALL_HUB_MIRROR set, `data` and `models` serve those Hub ids from the folder and count it as
the Hub for DATA="auto"/"hub" and MODEL="auto".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gptforall_utils import data, env, models  # noqa: E402

DEFAULT_MODELS = ("smollm2-135m-instruct", "smollm2-360m-instruct")


def hub_datasets(tasks: list[str]) -> list[tuple[str, str | None]]:
    """The (Hub id, config) pairs the given tasks read, each once, in task order."""
    pairs: dict[tuple[str, str | None], None] = {}
    for name in tasks:
        pairs.update(dict.fromkeys(data.get_task(name).hub_datasets))
    return list(pairs)


def main(argv: list[str] | None = None, load_dataset=None, save_model=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/prepare_hub_mirror.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mirror", help="folder to write (created if needed); later GPTFORALL_HUB_MIRROR=<this folder>")
    parser.add_argument("--tasks", nargs="+", default=None, help=f"tasks (default: all: {', '.join(data.tasks())})")
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS),
                        help="catalog names or Hub ids (default: %(default)s); none: --models with no name")
    parser.add_argument("--max-rows", type=int, default=None, help="keep only the first N rows of each split")
    args = parser.parse_args(argv)
    tasks = args.tasks or data.tasks()
    unknown = [t for t in tasks if t not in data.tasks()]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; tasks: {', '.join(data.tasks())}")
    if load_dataset is None or save_model is None:
        if not env.hub_reachable():
            print("The Hugging Face Hub is not reachable (HF_HUB_OFFLINE set, or no network): "
                  "prepare the mirror on a machine with network, then copy the folder.", file=sys.stderr)
            return 1
    if load_dataset is None:
        from datasets import load_dataset
    save_model = save_model or models.save_to_mirror
    out = Path(args.mirror).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    for hub_id, config in hub_datasets(tasks):
        started = time.perf_counter()
        dd = load_dataset(hub_id, config)
        first = next(iter(dd.values()))
        folder = data.save_to_mirror(dd, out, hub_id, config, max_rows=args.max_rows,
                                     licence=getattr(first.info, "license", None) or None)
        sizes = ", ".join(f"{name} {len(ds):,}" for name, ds in dd.items())
        print(f"dataset {hub_id}{f' ({config})' if config else ''}: {sizes} -> {folder} "
              f"({time.perf_counter() - started:.0f} s)")
    for name in args.models:
        hub_id = models.CATALOG[name].hub_id if name in models.CATALOG else name
        folder = save_model(hub_id, out)
        print(f"model   {hub_id} -> {folder}")
    print(f"\nReady: GPTFORALL_HUB_MIRROR={out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
