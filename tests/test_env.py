"""env: precision follows the hardware; profiles and the run context validate their input."""

from __future__ import annotations

import json

import pytest

from gptforall_utils import env


@pytest.mark.parametrize(
    ("device", "capability", "expected"),
    [
        ("cpu", None, "fp32"),       # emulated half precision is slow on CPUs
        ("mps", None, "fp32"),
        ("cuda", (7, 5), "fp16"),    # T4: fast fp16, no bf16
        ("cuda", (7, 0), "fp16"),    # V100
        ("cuda", (8, 0), "bf16"),    # A100
        ("cuda", (9, 0), "bf16"),    # H100
    ],
)
def test_precision_follows_hardware(device, capability, expected):
    assert env.precision(device, capability) == expected


def test_precision_reads_the_gpu_when_not_told(monkeypatch):
    monkeypatch.setattr(env, "cuda_capability", lambda: (7, 5))
    assert env.precision("cuda") == "fp16"
    monkeypatch.setattr(env, "cuda_capability", lambda: (8, 6))
    assert env.precision("cuda") == "bf16"


def test_torch_dtype_rejects_unknown_precision():
    import torch

    assert env.torch_dtype("bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="fp32, fp16, bf16"):
        env.torch_dtype("fp8")


def test_precision_name_is_the_inverse_of_torch_dtype():
    import torch

    for name in env.PRECISIONS:
        assert env.precision_name(env.torch_dtype(name)) == name
    with pytest.raises(ValueError, match="not one of the course's precisions"):
        env.precision_name(torch.int8)


def test_hub_is_unavailable_when_offline_is_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env._hub_answers.cache_clear()

    def no_network(*a, **k):
        raise AssertionError("must not probe the network when HF_HUB_OFFLINE is set")

    monkeypatch.setattr(env.socket, "create_connection", no_network)
    assert env.hub_available() is False


def test_hub_probe_reports_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    env._hub_answers.cache_clear()

    def refuse(*a, **k):
        raise OSError("unreachable")

    monkeypatch.setattr(env.socket, "create_connection", refuse)
    try:
        assert env.hub_available(timeout=0.1) is False
    finally:
        env._hub_answers.cache_clear()


def test_colab_detection(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-x")
    assert env.in_colab() is True


def test_seeding_makes_draws_repeat():
    import torch

    env.seed_everything(3)
    a = torch.rand(4)
    env.seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_profiles(monkeypatch):
    monkeypatch.setattr(env, "device", lambda: "cpu")
    assert env.resolve_profile("auto") == "cpu"
    monkeypatch.setattr(env, "device", lambda: "cuda")
    assert env.resolve_profile("auto") == "gpu"
    assert env.resolve_profile("smoke") == "smoke"
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        env.resolve_profile("fast")


def test_start_validates_parameters_and_records_metrics(tmp_path):
    with pytest.raises(ValueError, match="PROFILE"):
        env.start("nb", profile="tiny", output_dir=tmp_path)
    with pytest.raises(ValueError, match="SEED"):
        env.start("nb", profile="smoke", seed="0", output_dir=tmp_path)
    run = env.start("nb", profile="smoke", output_dir=tmp_path, verbose=False)
    assert run.pick(smoke=1, cpu=2, gpu=3) == 1
    out = run.record(accuracy=0.5, n_eval=8, model="m")
    assert out == tmp_path / "nb" / "metrics.json"
    assert json.loads(out.read_text()) == {"accuracy": 0.5, "n_eval": 8, "model": "m", "profile": "smoke"}
    with pytest.raises(ValueError, match="finite"):
        run.record(loss=float("nan"))
    with pytest.raises(ValueError, match="number or a string"):
        run.record(table=[1, 2])


def test_environment_summary_names_the_course_packages(capsys):
    info = env.print_environment()
    for key in ("python", "device", "precision", "ram_gb", "torch", "transformers", "peft", "trl", "bitsandbytes"):
        assert key in info
    assert info["torch"].startswith("2.13.0")
    assert "transformers" in capsys.readouterr().out


# ---------------------------------------------------------------- overrides: a T4 on any card, half precision on a CPU
def test_precision_override_replaces_what_the_hardware_would_choose(monkeypatch):
    monkeypatch.setenv(env.PRECISION_ENV, "bf16")
    assert env.precision("cpu") == "bf16"                 # half precision on a CPU, to test that path
    monkeypatch.setenv(env.PRECISION_ENV, " FP16 ")
    assert env.precision("cuda", (9, 0)) == "fp16"        # a T4's precision on an H100
    assert env.hardware_precision("cuda", (9, 0)) == "bf16"
    monkeypatch.delenv(env.PRECISION_ENV)
    assert env.precision("cpu") == "fp32"


@pytest.mark.parametrize("value", ["fp8", "half", "32"])
def test_a_bad_precision_override_is_refused_before_any_work(monkeypatch, tmp_path, value):
    monkeypatch.setenv(env.PRECISION_ENV, value)
    with pytest.raises(ValueError, match="GPTFORALL_PRECISION.*fp32, fp16, bf16"):
        env.precision("cpu")
    with pytest.raises(ValueError, match="GPTFORALL_PRECISION"):
        env.start("nb", profile="smoke", output_dir=tmp_path, verbose=False)
    assert not (tmp_path / "nb").exists()


def test_gpu_memory_cap_is_read_and_checked(monkeypatch):
    monkeypatch.delenv(env.GPU_MEMORY_ENV, raising=False)
    assert env.gpu_memory_cap_gb() is None
    monkeypatch.setenv(env.GPU_MEMORY_ENV, "15")
    assert env.gpu_memory_cap_gb() == 15.0
    for bad in ("0", "-2", "lots", "nan"):
        monkeypatch.setenv(env.GPU_MEMORY_ENV, bad)
        with pytest.raises(ValueError, match="GPTFORALL_GPU_MEMORY_GB.*positive number of GiB"):
            env.gpu_memory_cap_gb()


def test_gpu_memory_cap_limits_the_card_once(monkeypatch):
    import torch

    fractions = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, device=0: fractions.append(f))
    monkeypatch.setattr(env, "gpu_total_gb", lambda: 139.8)
    monkeypatch.setattr(env, "_applied_cap", None)
    monkeypatch.setenv(env.GPU_MEMORY_ENV, "15")
    assert env.gpu_memory_gb() == 15.0                     # what training plans with
    assert env.apply_gpu_memory_cap() == pytest.approx(15 / 139.8)
    env.apply_gpu_memory_cap()                             # a second notebook start in the same kernel: no-op
    assert fractions == [pytest.approx(15 / 139.8)]
    monkeypatch.setenv(env.GPU_MEMORY_ENV, "200")          # larger than the card: the whole card
    assert env.gpu_memory_gb() == 139.8
    monkeypatch.setattr(env, "gpu_total_gb", lambda: None)  # no CUDA: nothing to cap, nothing to plan
    assert env.gpu_memory_gb() is None and env.apply_gpu_memory_cap() is None


def test_environment_shows_the_overrides_and_what_they_make_effective(monkeypatch, capsys):
    monkeypatch.setenv(env.PRECISION_ENV, "bf16")
    monkeypatch.setenv(env.GPU_MEMORY_ENV, "15")
    info = env.print_environment()
    assert info["precision"] == "bf16" and info["hardware_precision"] == "fp32"
    assert info[env.PRECISION_ENV] == "bf16" and info[env.GPU_MEMORY_ENV] == "15"
    out = capsys.readouterr().out
    assert "hardware: fp32; GPTFORALL_PRECISION bf16" in out
    assert "no CUDA device: nothing to cap" in out
