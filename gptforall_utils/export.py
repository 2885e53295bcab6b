"""Export: after training, make the model small and take it with you.

Merge a LoRA adapter into its base (PEFT `merge_and_unload`); prune the linear layers (magnitude or
Wanda, unstructured or 2:4); write a GGUF file, the single-file format llama.cpp and Ollama run,
with the tokenizer and chat template inside (F16, Q8_0, Q4_0, Q4_1 ...); load it back through
transformers' `gguf_file=` and check what came back; measure generation speed.

The GGUF writer handles the Llama architecture (SmolLM2 is one) with a byte-level BPE tokenizer,
which is what this course's models are. It raises ValueError for anything else, before writing.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from . import env

PRUNE_METHODS = ("magnitude", "wanda")
PRUNE_PATTERNS = ("unstructured", "2:4")
# Layers pruning leaves alone: the output layer (tied to the embeddings in SmolLM2). Embeddings and norms
# are not nn.Linear, so they are never candidates.
PRUNE_EXCLUDE = ("lm_head",)
# GGUF weight types the pinned `gguf` package can write (quantize) in Python, and llama.cpp's file-type
# code for a file whose matrices are mostly of that type.
GGUF_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9}


# ---------------------------------------------------------------- merge
def merge_adapter(peft_model):
    """Fold a LoRA adapter into its base weights (W + scale * B A) and return the plain model.

    After this the model is an ordinary transformers model: no PEFT at inference, and it saves,
    prunes and exports like any other. PEFT changes the base model in place.
    """
    if not hasattr(peft_model, "merge_and_unload"):
        raise ValueError("merge_adapter needs a PEFT model (from get_peft_model or PeftModel.from_pretrained).")
    merged = peft_model.merge_and_unload()
    merged.eval()
    return merged


# ---------------------------------------------------------------- prune
def prunable_linears(model, exclude: Sequence[str] = PRUNE_EXCLUDE) -> dict[str, torch.nn.Module]:
    """The nn.Linear layers pruning acts on: every projection inside the transformer blocks.

    Embeddings, norms and the layers named in `exclude` (the output layer) are left untouched.
    """
    layers = {name: m for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) and name.split(".")[-1] not in exclude}
    if not layers:
        raise ValueError("The model has no nn.Linear layers to prune (is it quantized or wrapped?).")
    return layers


def magnitude_score(weight: torch.Tensor, input_norm: torch.Tensor | None = None) -> torch.Tensor:
    """Magnitude pruning's importance of each weight: |W| (small weights matter least)."""
    return weight.abs()


def wanda_score(weight: torch.Tensor, input_norm: torch.Tensor) -> torch.Tensor:
    """Wanda's importance of each weight (Sun et al., 2023): |W_ij| x ||X_j||_2.

    A small weight on an input feature that carries large activations still matters;
    `input_norm` is the L2 norm of each input feature over calibration tokens, shape (d_in,).
    """
    if input_norm is None or input_norm.shape != weight.shape[1:]:
        raise ValueError(f"Wanda needs one input norm per input feature: weight {tuple(weight.shape)}, "
                         f"norm {None if input_norm is None else tuple(input_norm.shape)}.")
    # (d_out, d_in) * (d_in,), in fp32 whatever the weights' precision: bf16 scores would tie and order differently
    return weight.abs().float() * input_norm.to(weight.device, torch.float32)


def keep_mask(score: torch.Tensor, sparsity: float, pattern: str = "unstructured") -> torch.Tensor:
    """True for the weights to keep.

    unstructured: in each output row, drop the round(sparsity x d_in) lowest scores (Wanda's comparison
    group; every row ends with exactly the same share of zeros).
    2:4: in every group of 4 consecutive inputs of a row, drop the 2 lowest (50%, the pattern sparse
    tensor cores accelerate); `sparsity` must be 0.5.
    """
    if pattern not in PRUNE_PATTERNS:
        raise ValueError(f"pattern={pattern!r}; choose one of {PRUNE_PATTERNS}.")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}.")
    d_out, d_in = score.shape
    if pattern == "2:4":
        if sparsity != 0.5 or d_in % 4:
            raise ValueError(f"2:4 pruning removes exactly half (sparsity=0.5) and needs d_in divisible by 4 "
                             f"(got sparsity={sparsity}, d_in={d_in}).")
        groups = score.reshape(d_out, d_in // 4, 4)
        drop = groups.topk(2, dim=-1, largest=False).indices  # the 2 smallest of each 4
        return torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False).reshape(d_out, d_in)
    k = round(d_in * sparsity)
    mask = torch.ones_like(score, dtype=torch.bool)
    if k:
        mask.scatter_(1, score.topk(k, dim=1, largest=False).indices, False)
    return mask


@torch.no_grad()
def activation_norms(model, tokenizer, texts: Sequence[str], n_batches: int = 4, seq_len: int = 256,
                     exclude: Sequence[str] = PRUNE_EXCLUDE) -> dict[str, torch.Tensor]:
    """||X_j||_2 of every input feature j of every prunable layer, over `n_batches` calibration
    sequences of `seq_len` tokens (Wanda's statistic; one forward pass each, no gradients)."""
    if n_batches <= 0 or seq_len <= 1:
        raise ValueError(f"need n_batches >= 1 and seq_len >= 2 (got {n_batches}, {seq_len}).")
    ids = tokenizer("\n\n".join(texts), return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    if ids.numel() < n_batches * seq_len:
        raise ValueError(f"The calibration text has {ids.numel()} tokens; {n_batches} x {seq_len} are needed. "
                         f"Give more text or ask for fewer batches.")
    layers = prunable_linears(model, exclude)
    sums = {name: torch.zeros(m.in_features, dtype=torch.float64) for name, m in layers.items()}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()  # (tokens, d_in)
            sums[name] += (x * x).sum(dim=0).cpu()
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    device = next(model.parameters()).device
    try:
        for b in range(n_batches):
            model(input_ids=ids[b * seq_len:(b + 1) * seq_len].unsqueeze(0).to(device))
    finally:
        for h in handles:
            h.remove()
    return {name: s.sqrt().float() for name, s in sums.items()}


@torch.no_grad()
def prune_(model, sparsity: float, method: str = "magnitude", pattern: str = "unstructured",
           norms: dict[str, torch.Tensor] | None = None, exclude: Sequence[str] = PRUNE_EXCLUDE) -> float:
    """Prune the model's linear layers in place (set the least important weights to zero); return the
    share of zeros now in those layers. `norms` (from activation_norms) is required for Wanda."""
    if method not in PRUNE_METHODS:
        raise ValueError(f"method={method!r}; choose one of {PRUNE_METHODS}.")
    layers = prunable_linears(model, exclude)
    if method == "wanda":
        missing = [n for n in layers if norms is None or n not in norms]
        if missing:
            raise ValueError(f"Wanda needs activation norms for every layer (missing e.g. {missing[0]!r}); "
                             f"compute them with export.activation_norms(model, tokenizer, texts).")
    score_fn = wanda_score if method == "wanda" else magnitude_score
    for name, layer in layers.items():
        w = layer.weight
        mask = keep_mask(score_fn(w, None if norms is None else norms[name]), sparsity, pattern)
        w.mul_(mask.to(w.dtype))
    return measured_sparsity(model, exclude)


def measured_sparsity(model, exclude: Sequence[str] = PRUNE_EXCLUDE) -> float:
    """Share of exactly-zero weights in the prunable linear layers."""
    layers = prunable_linears(model, exclude)
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    return zeros / sum(m.weight.numel() for m in layers.values())


@contextlib.contextmanager
def pruned(model, sparsity: float, method: str = "magnitude", pattern: str = "unstructured",
           norms: dict[str, torch.Tensor] | None = None, exclude: Sequence[str] = PRUNE_EXCLUDE) -> Iterator[float]:
    """`with export.pruned(model, 0.5, "wanda", norms=norms) as achieved: ...` prunes the model for
    the block and restores the dense weights afterwards (so one model serves a whole sweep)."""
    layers = prunable_linears(model, exclude)
    dense = {name: m.weight.detach().clone() for name, m in layers.items()}
    try:
        yield prune_(model, sparsity, method, pattern, norms, exclude)
    finally:
        with torch.no_grad():
            for name, m in layers.items():
                m.weight.copy_(dense[name])


def two_four_holds(weight: torch.Tensor) -> bool:
    """True when every group of 4 consecutive inputs of every row has at least 2 zeros."""
    d_out, d_in = weight.shape
    if d_in % 4:
        return False
    return bool(((weight.reshape(d_out, d_in // 4, 4) == 0).sum(-1) >= 2).all())


# ---------------------------------------------------------------- GGUF: write
def _config_value(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    theta = theta if theta is not None else getattr(config, "rope_theta", None)
    if theta is None:
        raise ValueError("The model config has no rope_theta; cannot describe its rotary embedding in GGUF.")
    rope_type = params.get("rope_type", "default") if isinstance(params, dict) else "default"
    if rope_type not in ("default", None):
        raise ValueError(f"RoPE scaling {rope_type!r} is not written by this exporter (SmolLM2 uses none).")
    return float(theta)


def permute_for_gguf(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """Reorder q/k projection rows from Hugging Face's rotary layout to llama.cpp's.

    Hugging Face rotates the two halves of each head (dims i and i + d/2 form a pair); llama.cpp
    rotates neighbours (2i, 2i+1). Per head, rows [0..d/2) and [d/2..d) are interleaved. transformers
    undoes exactly this when it loads a GGUF (LlamaTensorProcessor._reverse_permute_weights).
    """
    d_out = weight.shape[0]
    half = d_out // n_head // 2
    return weight.reshape(n_head, 2, half, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def _tensor_type(gguf_name: str, shape: tuple[int, ...], qtype: str, overrides: dict[str, str] | None = None) -> str:
    """The type each tensor is stored in: 1-D tensors (norms, biases) in F32; the token embedding
    (also the output layer when tied) in Q8_0 in a quantized file, as llama.cpp's quantized SmolLM2 files
    do, since it is the most sensitive matrix; matrices whose rows do not split into whole blocks in F16."""
    import gguf

    if len(shape) == 1 or qtype == "F32":
        return "F32"
    if qtype == "F16":
        return "F16"
    wanted = "Q8_0" if gguf_name in ("token_embd.weight", "output.weight") and qtype != "Q8_0" else qtype
    for part, kind in (overrides or {}).items():
        if part in gguf_name:
            wanted = kind
    if wanted in ("F16", "F32"):
        return wanted
    block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[wanted]][0]
    return wanted if shape[-1] % block == 0 else "F16"


def _vocabulary(tokenizer, n_vocab: int) -> tuple[list[str], list[int]]:
    """Token strings by id (byte-level BPE spelling) and their llama.cpp token types, padded to n_vocab."""
    import gguf

    vocab = tokenizer.get_vocab()
    if len(vocab) > n_vocab:
        raise ValueError(f"The tokenizer has {len(vocab)} tokens but the model only {n_vocab} embedding rows.")
    by_id = {i: t for t, i in vocab.items()}
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:  # embedding rows no token uses (vocabularies padded to a round size)
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
            continue
        tokens.append(by_id[i])
        if i in added:
            types.append(int(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED))
        else:
            types.append(int(gguf.TokenType.NORMAL))
    return tokens, types


def _check_exportable(model, tokenizer) -> None:
    config = model.config
    if getattr(config, "model_type", None) != "llama":
        raise ValueError(f"write_gguf writes the Llama architecture (SmolLM2 is one); this model is "
                         f"{getattr(config, 'model_type', None)!r}.")
    if hasattr(model, "peft_config"):
        raise ValueError("Merge the adapter first (export.merge_adapter): a GGUF file holds plain weights.")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("write_gguf needs a fast (tokenizers) tokenizer.")
    import json

    spec = json.loads(backend.to_str())
    if spec.get("model", {}).get("type") != "BPE" or (spec.get("decoder") or {}).get("type") != "ByteLevel":
        raise ValueError("write_gguf writes byte-level BPE tokenizers (GPT-2 style, as SmolLM2's); this one is "
                         f"{spec.get('model', {}).get('type')!r}.")
    _rope_theta(config)


def write_gguf(model, tokenizer, path: str | Path, qtype: str = "F16", *, name: str | None = None,
               pre_tokenizer: str = "smollm", overrides: dict[str, str] | None = None) -> Path:
    """Write a Llama-architecture model and its tokenizer to one GGUF file that llama.cpp, Ollama and
    transformers (`gguf_file=`) can load. Returns the path.

    qtype: "F16" (lossless for fp16 weights), "Q8_0" (8-bit blocks of 32 with one scale), "Q4_0" or
    "Q4_1" (4-bit blocks of 32; Q4_1 adds a minimum per block), also "Q5_0", "Q5_1", "F32".
    pre_tokenizer: llama.cpp's name for the text-splitting rule of the vocabulary ("smollm" for SmolLM2).
    overrides: a type for the tensors whose GGUF name contains a key, e.g. {"attn_v": "Q8_0", "ffn_down": "Q8_0"}
    keeps those matrices at 8 bits in a 4-bit file (the idea behind llama.cpp's mixed "_M" types).
    """
    import gguf
    import numpy as np

    for kind in (qtype, *(overrides or {}).values()):
        if kind not in GGUF_TYPES:
            raise ValueError(f"GGUF type {kind!r}; choose one of {', '.join(GGUF_TYPES)}.")
    _check_exportable(model, tokenizer)
    config = model.config
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_layers = config.num_hidden_layers
    n_head = config.num_attention_heads
    n_kv = _config_value(config, "num_key_value_heads", default=n_head)
    head_dim = _config_value(config, "head_dim", default=config.hidden_size // n_head)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    n_vocab = state["model.embed_tokens.weight"].shape[0]
    tied = bool(getattr(config, "tie_word_embeddings", False))

    writer = gguf.GGUFWriter(path, "llama")
    # -- what the model is (llama.cpp reads these to build the graph; transformers to rebuild the config)
    writer.add_type("model")
    writer.add_name(name or str(getattr(config, "_name_or_path", "") or "model").split("/")[-1])
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(n_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(int(n_head))
    writer.add_head_count_kv(int(n_kv))
    writer.add_rope_dimension_count(int(head_dim))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(n_vocab))
    writer.add_file_type(GGUF_TYPES[qtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # -- the tokenizer and chat template, so the file runs on its own
    tokens, types = _vocabulary(tokenizer, n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        special = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=n_vocab)
    probe = tokenizer("a")["input_ids"]
    special.add_special_token["bos"] = bool(probe) and probe[0] == tokenizer.bos_token_id
    special.add_special_token["eos"] = bool(probe) and probe[-1] == tokenizer.eos_token_id
    if tokenizer.pad_token_id is not None:
        special.special_token_ids["pad"] = int(tokenizer.pad_token_id)
    if getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)

    # -- the weights, under llama.cpp's names
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    for hf_name, tensor in state.items():
        if tied and hf_name == "lm_head.weight":
            continue  # the output layer is the embedding matrix; llama.cpp reuses token_embd
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"No GGUF name for tensor {hf_name!r}; the exporter does not know this layer.")
        if hf_name.endswith("q_proj.weight"):
            tensor = permute_for_gguf(tensor, n_head)
        elif hf_name.endswith("k_proj.weight"):
            tensor = permute_for_gguf(tensor, n_kv)
        kind = _tensor_type(gguf_name, tuple(tensor.shape), qtype, overrides)
        qt = gguf.GGMLQuantizationType[kind]
        data = gguf.quants.quantize(env.to_numpy(tensor), qt)
        writer.add_tensor(gguf_name, data, raw_dtype=qt if data.dtype == np.uint8 else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ---------------------------------------------------------------- GGUF: read back and verify
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _read_gguf_header(path: str | Path) -> tuple[dict, list[tuple[str, int, int]]]:
    """(metadata, tensors) from a GGUF file's header, without reading the tensor data: metadata maps each key to
    its value (arrays as `("array", length)`), tensors lists (name, GGML type id, number of elements).

    The layout is GGUF v2/v3 (little-endian): magic, version, tensor count, key/value count, the key/value
    pairs, then one (name, dims, type, offset) record per tensor. gguf-py's GGUFReader builds an object for
    every element of the vocabulary arrays, which takes seconds; this skips them.
    """
    import mmap
    import struct

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (its first bytes are {bytes(buf[:4])!r}).")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported (2 and 3 are).")
        pos = 24

        def string() -> str:
            nonlocal pos
            (n,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + n
            return bytes(buf[pos - n:pos]).decode("utf-8", errors="replace")

        def value(vtype: int):
            nonlocal pos
            if vtype in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[vtype]
                (v,) = struct.unpack_from(fmt, buf, pos)
                pos += struct.calcsize(fmt)
                return v
            if vtype == _GGUF_STRING:
                return string()
            if vtype == _GGUF_ARRAY:
                etype, count = struct.unpack_from("<IQ", buf, pos)
                pos += 12
                if etype in _GGUF_SCALARS:
                    pos += count * struct.calcsize(_GGUF_SCALARS[etype])
                else:
                    for _ in range(count):
                        value(etype)
                return ("array", count)
            raise ValueError(f"{path}: unknown GGUF value type {vtype} at byte {pos}.")

        meta = {}
        for _ in range(n_kv):
            key = string()
            (vtype,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            meta[key] = value(vtype)
        tensors = []
        for _ in range(n_tensors):
            name = string()
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
            ttype, _offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            n = 1
            for d in dims:
                n *= d
            tensors.append((name, ttype, n))
    return meta, tensors


def gguf_summary(path: str | Path) -> dict:
    """What a GGUF file holds: size, tensor types (count of tensors per type), bytes per type, and its
    metadata keys (arrays shown by length). Reads the header only (see `_read_gguf_header`)."""
    import gguf

    meta_raw, tensors = _read_gguf_header(path)
    counts, sizes = Counter(), Counter()
    for _name, ttype, n in tensors:
        qtype = gguf.GGMLQuantizationType(ttype)
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        counts[qtype.name] += 1
        sizes[qtype.name] += n // block * type_size
    meta = {}
    for key, value in meta_raw.items():
        if isinstance(value, tuple):
            value = f"[{value[1]} items]"
        elif isinstance(value, str) and len(value) > 60:
            value = value[:57] + "..."
        meta[key] = value
    return {"path": str(path), "mb": Path(path).stat().st_size / 2**20, "tensor_types": dict(counts),
            "tensor_mb": {k: v / 2**20 for k, v in sizes.items()}, "metadata": meta}


def _gguf_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write it with export.write_gguf first.")
    return path


@contextlib.contextmanager
def _gguf_parsed_once():
    """While loading one file, parse it once and build gguf-py's tensor-name map once.

    transformers' `gguf_file=` path opens a GGUFReader for the config, again for the weights and again for the
    tokenizer (each parse walks the ~100k vocabulary and merge strings), and rebuilds the same tensor-name map
    for every submodule of the model (hundreds of times). Both are pure functions of their arguments, so they
    are memoised for the duration of the load; nothing else changes, and gguf's own functions are restored after.
    """
    import gguf

    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def reader(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(real_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_map


def load_gguf_model(path: str | Path, dtype=None):
    """The model in a GGUF file, through transformers' `gguf_file=`: the config is rebuilt from the metadata
    and quantized blocks are de-quantized to `dtype` (fp32 by default: transformers computes in floats)."""
    from transformers import AutoModelForCausalLM

    path = _gguf_path(path)
    with _gguf_parsed_once():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype or torch.float32)
    model.eval()
    return model


def load_gguf_tokenizer(path: str | Path):
    """The tokenizer (vocabulary, merges, special tokens, chat template) rebuilt from a GGUF file's metadata."""
    from transformers import AutoTokenizer

    path = _gguf_path(path)
    with _gguf_parsed_once():
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_gguf(path: str | Path, dtype=None):
    """(model, tokenizer) from a GGUF file, both through transformers' `gguf_file=` (the file parsed once)."""
    with _gguf_parsed_once():
        return load_gguf_model(path, dtype), load_gguf_tokenizer(path)


def fp16_rounded(model):
    """A CPU fp32 copy of the model whose weight matrices are rounded to fp16: exactly what transformers holds after
    loading an F16 GGUF file of it (fp16 matrices, F32 norms, computed in fp32 on the CPU), wherever the model lives
    and whatever its precision, so the two give bit-identical logits."""
    twin = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    with torch.no_grad():
        for p in twin.parameters():
            if p.ndim >= 2:
                p.copy_(p.to(torch.float16).to(p.dtype))
    return twin


def int8_dynamic(model):
    """PyTorch's dynamic int8 quantization (`torch.ao.quantization.quantize_dynamic`) of a **CPU fp32 copy** of the
    model: int8 weights with one scale per output row, each linear layer's input quantized on the fly. Its kernels
    exist for the CPU and fp32 activations only, so the copy is made there whatever the model's device and precision
    (a card, bf16); the model passed in is left as it is. Label results from it as a CPU form of the model."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao; it works here
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        twin = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
        quantized = quantize_dynamic(twin, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return quantized.eval()


@torch.no_grad()
def max_logit_difference(model_a, model_b, input_ids: torch.Tensor) -> float:
    """Largest absolute difference between two models' logits on the same tokens (0.0: identical)."""
    a = model_a(input_ids=input_ids.to(model_a.device)).logits.float().cpu()
    b = model_b(input_ids=input_ids.to(model_b.device)).logits.float().cpu()
    return float((a - b).abs().max())


def same_tokenizer(tok_a, tok_b, texts: Sequence[str]) -> bool:
    """True when both tokenizers give the same ids for every text and render the same chat prompt."""
    for text in texts:
        if tok_a(text, add_special_tokens=False)["input_ids"] != tok_b(text, add_special_tokens=False)["input_ids"]:
            return False
    messages = [{"role": "user", "content": texts[0] if texts else "hi"}]
    return (tok_a.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            == tok_b.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


# ---------------------------------------------------------------- on-device speed
def file_mb(path: str | Path) -> float:
    """Size of a file on disk in MiB."""
    return Path(path).stat().st_size / 2**20


def weights_mb(model) -> float:
    """Memory the model's weights take, in MiB: parameters and buffers as stored (serialized size, which
    also counts packed int8 weights that are not parameters)."""
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


class _Clock:
    """A generate() streamer that only notes when each token arrives."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


@torch.no_grad()
def generation_speed(model, tokenizer, prompt: str, max_new_tokens: int = 32) -> dict[str, float | str]:
    """Greedy generation of exactly `max_new_tokens` tokens after `prompt`, timed.

    ttft_s: time to first token (the whole prompt is processed, then one token comes out);
    tokens_per_s: decoding speed after the first token; text: what it generated.
    """
    if max_new_tokens < 2:
        raise ValueError("max_new_tokens must be at least 2 to time decoding after the first token.")
    batch = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    clock = _Clock()
    started = time.perf_counter()
    out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id, streamer=clock)
    # The streamer is called once with the prompt, then once per new token.
    token_times = clock.times[1:]
    n = len(token_times)
    ttft = token_times[0] - started
    rate = (n - 1) / (token_times[-1] - token_times[0]) if n > 1 else float("nan")
    text = tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return {"ttft_s": ttft, "tokens_per_s": rate, "new_tokens": n, "text": text}


def llama_cpp_available() -> bool:
    """True when the llama-cpp-python package (llama.cpp itself) is importable here."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def llama_cpp_speed(path: str | Path, prompt: str, max_new_tokens: int = 32, n_threads: int | None = None,
                    n_ctx: int = 1024) -> dict[str, float | str]:
    """Load a GGUF file in llama.cpp (llama-cpp-python) and time greedy generation like generation_speed:
    ttft_s, tokens_per_s, the text, and the process's resident-memory growth while loading and running."""
    import llama_cpp

    from .memory import PeakMemory

    with PeakMemory("cpu") as pm:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or torch.get_num_threads(),
                              verbose=False)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        started = time.perf_counter()
        times, ids = [], []
        for token in llm.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
            times.append(time.perf_counter())
            ids.append(token)
            if len(ids) >= max_new_tokens:
                break
    n = len(ids)
    text = llm.detokenize(ids, special=False).decode("utf-8", errors="replace")
    del llm
    return {"ttft_s": times[0] - started,
            "tokens_per_s": (n - 1) / (times[-1] - times[0]) if n > 1 else float("nan"),
            "new_tokens": n, "text": text, "peak_mb": pm.peak_mb}
