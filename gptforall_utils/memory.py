"""Memory: how much a model needs (pure arithmetic) and how much it used (measurement).

Measurement: `PeakMemory` records the CUDA peak on a GPU, and on a CPU the growth of the
process's peak resident set size (sampled in a background thread, because the kernel's own
high-water mark cannot be reset).
"""

from __future__ import annotations

import os
import threading
import time

MB = 2**20


def rss_bytes() -> int:
    """Current resident set size of this process, in bytes (Linux /proc; falls back to psutil)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


class PeakMemory:
    """Context manager: peak memory used by the code inside it, above what was in use before.

        with PeakMemory() as pm:
            trainer.train()
        pm.peak_mb   # CUDA: max_memory_allocated growth; CPU: peak RSS growth
    """

    def __init__(self, device: str | None = None, interval: float = 0.005):
        if device is None:
            from . import env

            device = env.device()
        self.device = device
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        import gc

        gc.collect()
        self._started = time.perf_counter()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
            self.peak = self.baseline
        else:
            self.baseline = rss_bytes()
            self.peak = self.baseline
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        self.seconds = time.perf_counter() - self._started

    @property
    def peak_mb(self) -> float:
        """Peak memory above the baseline, in MiB."""
        return (self.peak - self.baseline) / MB


# ---------------------------------------------------------------- hardware and prices (one place, dated)
PRICES_AS_OF = "2026-11"


class Hardware(dict):
    """memory_gb, usd_per_hour (typical on-demand cloud price; varies by provider and region),
    tflops (dense half-precision tensor throughput from the vendor's datasheet)."""


HARDWARE: dict[str, Hardware] = {
    "CPU machine 24 GB": Hardware(memory_gb=24, usd_per_hour=0.10, tflops=0.1),
    "Colab T4 16 GB": Hardware(memory_gb=16, usd_per_hour=0.35, tflops=65),
    "L4 24 GB": Hardware(memory_gb=24, usd_per_hour=0.70, tflops=121),
    "A100 40 GB": Hardware(memory_gb=40, usd_per_hour=1.30, tflops=312),
    "A100 80 GB": Hardware(memory_gb=80, usd_per_hour=1.80, tflops=312),
    "H100 80 GB": Hardware(memory_gb=80, usd_per_hour=2.50, tflops=989),
}
