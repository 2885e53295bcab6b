"""On-device inference on this machine: every form of the embedded SmolLM2 model, in transformers and in llama.cpp.

For fp32, int8 (PyTorch dynamic quantization, per-channel) and the GGUF files this course writes (F16, Q8_0, Q4_1, Q4_0,
through `export.write_gguf`): time to first token, decoding tokens/s over a fixed number of greedy tokens, the memory
the weights take, the file size, and perplexity on held-out text. llama.cpp rows appear when `llama_cpp`
(llama-cpp-python) is importable; `--llama-cpp-site DIR` appends a site-packages folder that has it (a throwaway
venv, so the course venv never needs it). The notebook (11) measures the same on its fine-tuned model; this script
measures the base model, repeats each timing and keeps the best, and records the llama-cpp-python install finding.

Run by hand, serialised with the other heavy jobs:
    flock /tmp/gptforall-cpu.lock python benchmarks/bench_on_device.py \
        [--llama-cpp-site /tmp/llcpp/venv-lcp/lib/python3.11/site-packages] [--install-log /tmp/llcpp/build.log]
Writes benchmarks/results/on_device_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from gptforall_utils import data, env, export, memory, metrics, models, prompts

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = ("F16", "Q8_0", "Q4_1", "Q4_0")


def best_of(fn, repeats: int) -> dict:
    """Run a timing `repeats` times; keep the run with the highest decoding speed (least disturbed)."""
    runs = [fn() for _ in range(repeats)]
    return max(runs, key=lambda r: r["tokens_per_s"])


def install_finding(log: Path | None) -> dict:
    """What the llama-cpp-python install log says: seconds of wall time and whether it succeeded."""
    if log is None or not log.is_file():
        return {}
    text = log.read_text(errors="replace")
    out = {"log": str(log)}
    m = re.search(r"real\s+(\d+)m([\d.]+)s", text)
    if m:
        out["install_seconds"] = int(m.group(1)) * 60 + float(m.group(2))
    m = re.search(r"rc=(\d+)", text)
    if m:
        out["install_rc"] = int(m.group(1))
    m = re.search(r"Successfully installed .*?\b(llama[-_]cpp[-_]python-\S+)", text)
    if m:
        out["installed"] = m.group(1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ppl-tokens", type=int, default=4096)
    parser.add_argument("--llama-cpp-site", default=None, help="a site-packages folder with llama_cpp (appended)")
    parser.add_argument("--install-log", default=None, help="the log of a timed `pip install llama-cpp-python`")
    args = parser.parse_args(argv)
    if args.llama_cpp_site:
        sys.path.append(args.llama_cpp_site)
    warnings.filterwarnings("ignore")
    memory.release_freed_memory()

    tok = models.load_tokenizer("smollm2-135m-instruct")
    fp32 = models.load_model("smollm2-135m-instruct", verbose=False)
    text = list(data.load("lm_text", "offline")["test"]["text"])
    prompt = prompts.chat(tok, "Explain in two sentences why the sky is blue.")

    def ppl(m) -> float:
        return metrics.perplexity(m, tok, text, max_length=512, stride=384, max_tokens=args.ppl_tokens)

    def timed(m) -> dict:
        export.generation_speed(m, tok, prompt, max_new_tokens=2)  # warm-up
        return best_of(lambda: export.generation_speed(m, tok, prompt, max_new_tokens=args.new_tokens), args.repeats)

    rows = []

    def add(form: str, runtime: str, s: dict, weights_mb: float, file_mb: float | None, perplexity: float | None):
        row = {"form": form, "runtime": runtime, "ttft_s": round(s["ttft_s"], 3),
               "tokens_per_s": round(s["tokens_per_s"], 1), "weights_mb": round(weights_mb, 1),
               "file_mb": None if file_mb is None else round(file_mb, 1),
               "perplexity": None if perplexity is None else round(perplexity, 3)}
        if "peak_mb" in s:
            row["rss_growth_mb"] = round(s["peak_mb"], 1)
        rows.append(row)
        print(row, flush=True)

    add("fp32", "transformers", timed(fp32), export.weights_mb(fp32), None, ppl(fp32))
    int8 = export.int8_dynamic(fp32)  # the notebook's int8 row: quantize_dynamic on a CPU fp32 copy
    add("int8 dynamic (per-channel)", "transformers", timed(int8), export.weights_mb(int8), None, ppl(int8))
    del int8

    llama_cpp = export.llama_cpp_available()
    with tempfile.TemporaryDirectory() as tmp:
        files = {q: export.write_gguf(fp32, tok, Path(tmp) / f"smollm2-{q}.gguf", q) for q in TYPES}
        quality = {}
        for q, path in files.items():
            m = export.load_gguf_model(path)
            quality[q] = ppl(m)
            add(f"GGUF {q}", "transformers (de-quantized)", timed(m), export.weights_mb(m), export.file_mb(path),
                quality[q])
            del m
            memory.release_freed_memory()
        if llama_cpp:
            import llama_cpp as lc

            for q, path in files.items():
                export.llama_cpp_speed(path, prompt, max_new_tokens=2)  # warm-up (page cache, threads)
                s = best_of(lambda p=path: export.llama_cpp_speed(p, prompt, max_new_tokens=args.new_tokens),
                            args.repeats)
                add(f"GGUF {q}", f"llama.cpp (llama-cpp-python {lc.__version__})", s,
                    sum(export.gguf_summary(path)["tensor_mb"].values()), export.file_mb(path), quality[q])
                print("   llama.cpp greedy text:", repr(s["text"][:80]))

    info = {
        "when_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "device": env.device(),
        "new_tokens": args.new_tokens, "repeats": args.repeats, "ppl_tokens": args.ppl_tokens,
        "llama_cpp_importable": llama_cpp, "llama_cpp_install": install_finding(
            Path(args.install_log) if args.install_log else None),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"on_device_{env.device()}.json"
    out.write_text(json.dumps(info, indent=2) + "\n")
    lines = [f"# On-device inference ({info['device']}, {info['machine']}, {info['when_utc']} UTC)", "",
             f"Embedded SmolLM2-135M-Instruct; {args.new_tokens} greedy tokens after a chat prompt, best of "
             f"{args.repeats}; perplexity on {args.ppl_tokens} tokens of the offline `lm_text` test split, computed "
             "in transformers (a llama.cpp row shows the perplexity of the same file, not one llama.cpp computed).", "",
             "| form | runtime | file MiB | weights in memory MiB | TTFT s | tokens/s | perplexity |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['form']} | {r['runtime']} | {r['file_mb'] if r['file_mb'] is not None else '-'} | "
                     f"{r['weights_mb']} | {r['ttft_s']} | {r['tokens_per_s']} | {r['perplexity']} |")
    (RESULTS / f"on_device_{env.device()}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
