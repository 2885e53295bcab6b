"""Device hygiene, checked without a GPU: the two mistakes that pass on a CPU and crash on any CUDA card.

The check reads code with Python's `ast`; it runs nothing. It reads every notebook's code cells
(`notebooks/*.ipynb`, `notebooks/solutions/*.ipynb`; 10 and 11 as generated from their scripts), one
test per notebook, and every module of `gptforall_utils/`, one test per module. In a notebook the code
cells are read in order as one program (a name bound in one cell is the same name in the next); lines
starting with `!` or `%` (shell and line magics) are dropped and a cell starting with `%%` is skipped.

Rule 1, NumPy: a tensor goes to NumPy only through `env.to_numpy(t)` (detach, CPU, float32 for half
precision). Every call `x.numpy()` is flagged, except inside `env.to_numpy` itself. `.numpy()` raises on
a card tensor, and a bf16 tensor has no NumPy dtype at all.

Rule 2, device: a tensor the code creates and feeds to a model must be created on the model's device.
 - A *CPU tensor* is the result of: a call with `return_tensors="pt"` (a tokenizer, `apply_chat_template`,
   `tok.pad`); a torch factory (`torch.tensor`, `as_tensor`, `from_numpy`, `zeros`, `ones`, `full`, `empty`,
   `arange`, `linspace`, `rand`, `randn`, `randint`, `randperm`, `eye`, `LongTensor`, `FloatTensor`) without
   a `device=` argument; `torch.cat`/`torch.stack` of a CPU tensor; and what is derived from one: a name bound
   to it, an index or slice of it, an attribute of it (`enc.input_ids`; not `.shape`, `.dtype`, `.device`,
   `.ndim`), a list, tuple or dict literal holding one, arithmetic with it, a loop variable over it, and a
   method call on it (`.view`, `.long`, ...) other than `.to(...)`, `.cuda()` and methods that return plain
   Python values (`.item`, `.tolist`, `.size`, `.dim`, `.numel`, `.numpy`, `.keys`, `.items`, `.values`).
   `x.to(anything)` and `x.cuda()` make it clean: the check trusts that the target is the model's device
   (`run.device`, `model.device`).
 - A *model call* is `M(...)`, `M.forward(...)` or `M.generate(...)` where M is a model, and any
   `X.generate(...)` whatever X is. A model is a name bound by a loader (`load_model`, `.from_pretrained` on a
   `*Model*` class), by `get_peft_model`/`prepare_model_for_kbit_training` of a model, by `.merge_and_unload()`,
   `.eval()`, `.train()`, `.float()` or `.to(...)` of a model, a name bound to another model, or any name that
   contains "model" (`model`, `qmodel`, `base_model`: how the course names them, parameters of helper
   functions included). A toy module built from `torch.nn` layers on the CPU (`peft_toy` in notebook 03) is
   not a model, so CPU inputs to it are right.
 - Flagged: a CPU tensor passed to a model call, positionally, as a keyword value or unpacked (`**batch`).
 Names are tracked in program order, per scope: rebinding a name (`ids = ids.to(model.device)`) clears it;
 a function body sees the names of the scope it is defined in, as they stand at its definition (its
 parameters shadow them); branches and loop bodies are read once, in order.

What it cannot catch (it does not know types or values; tests on a GPU do):
 - a CPU tensor handed to a helper that feeds the model (`metrics.perplexity(model, ids)`): only direct model
   calls are sinks; the package's helpers are checked where they call the model themselves;
 - a model whose name neither comes from a loader nor contains "model" (`net = ...; net(ids)` with `net`
   bound by other code), a model stored in a container (`models_by_name["base"](ids)`), or a tensor that
   reaches the model through a comprehension (`{k: v for k, v in enc.items()}`), a container filled
   elsewhere or another module's attribute;
 - `.to(...)` to the wrong device (`.to("cpu")` counts as moved);
 - tensors made by other libraries (`datasets` formatted as torch, a `DataCollator`): the Trainer moves those;
 - a CPU tensor passed into a function (its parameters start clean) or returned by one;
 - NumPy conversions that do not say `.numpy()`: `np.asarray(t)`, `np.array(t)`, `plt.hist(t)` on a card
   tensor (`float(t)`, `.item()` and `.tolist()` are right on any device and not flagged);
 - code that does not parse (a cell with a syntax error is reported as a failure, not skipped).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
MODULES = sorted((ROOT / "gptforall_utils").rglob("*.py"))

TORCH_FACTORIES = {"tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange", "linspace",
                   "rand", "randn", "randint", "randperm", "eye", "LongTensor", "FloatTensor"}
TORCH_JOINS = {"cat", "stack", "concat", "concatenate"}
MOVERS = {"to", "cuda"}
PLAIN_METHODS = {"item", "tolist", "size", "dim", "numel", "numpy", "keys", "items", "values", "__len__"}
PLAIN_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad"}
LOADERS = {"load_model", "from_pretrained"}  # from_pretrained: on a *Model* class
WRAPPERS = {"get_peft_model", "prepare_model_for_kbit_training"}  # a model when their first argument is one
TO_NUMPY_HOME = ("env.py", "to_numpy")  # the one function allowed to call .numpy()


@dataclass
class Finding:
    where: str
    line: int
    rule: str
    code: str

    def __str__(self):
        return f"{self.where}, line {self.line}: {self.rule}: {self.code}"


def _is_model_name(name: str, models: set[str]) -> bool:
    return name in models or "model" in name.lower() and name != "models"


@dataclass
class _Scope:
    cpu: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)

    def copy(self):
        return _Scope(set(self.cpu), set(self.models))


class Checker:
    """Reads statements in order and records findings; see the module docstring for the rules."""

    def __init__(self, where: str, source_lines: list[str], numpy_allowed_in: str | None = None):
        self.where, self.lines, self.numpy_allowed_in = where, source_lines, numpy_allowed_in
        self.findings: list[Finding] = []
        self.function: str | None = None

    # -- expressions
    def is_cpu(self, node, scope: _Scope) -> bool:
        if isinstance(node, ast.Name):
            return node.id in scope.cpu
        if isinstance(node, ast.Subscript):
            return self.is_cpu(node.value, scope)
        if isinstance(node, ast.Starred):
            return self.is_cpu(node.value, scope)
        if isinstance(node, ast.Attribute):
            return node.attr not in PLAIN_ATTRS and self.is_cpu(node.value, scope)
        if isinstance(node, ast.BinOp):
            return self.is_cpu(node.left, scope) or self.is_cpu(node.right, scope)
        if isinstance(node, ast.UnaryOp):
            return self.is_cpu(node.operand, scope)
        if isinstance(node, (ast.List, ast.Tuple)):
            return any(self.is_cpu(e, scope) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.is_cpu(v, scope) for v in node.values)
        if isinstance(node, ast.Call):
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            rt = kw.get("return_tensors")
            if isinstance(rt, ast.Constant) and rt.value == "pt":
                return True
            f = node.func
            if isinstance(f, ast.Attribute):
                if isinstance(f.value, ast.Name) and f.value.id == "torch":
                    if f.attr in TORCH_FACTORIES:
                        return "device" not in kw
                    if f.attr in TORCH_JOINS:
                        return "device" not in kw and any(self.is_cpu(a, scope) for a in node.args)
                    return False
                if f.attr in MOVERS or f.attr in PLAIN_METHODS:
                    return False
                return self.is_cpu(f.value, scope)
        return False

    def is_model(self, node, scope: _Scope) -> bool:
        return isinstance(node, ast.Name) and _is_model_name(node.id, scope.models)

    def binds_model(self, value, scope: _Scope) -> bool:
        if isinstance(value, ast.Name):
            return value.id in scope.models
        if isinstance(value, ast.Call):
            f = value.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name == "load_model":
                return True
            if name == "from_pretrained" and "Model" in ast.unparse(f.value):
                return True
            if name in WRAPPERS:
                return bool(value.args) and self.is_model(value.args[0], scope)
            if isinstance(f, ast.Attribute) and name in ("eval", "train", "merge_and_unload", "float", "to"):
                return self.is_model(f.value, scope)
        return False

    def check_calls(self, node, scope: _Scope):
        """Findings for every call inside an expression (or a simple statement)."""
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            f = call.func
            if isinstance(f, ast.Attribute) and f.attr == "numpy" and not call.args:
                if self.numpy_allowed_in is None or self.function != self.numpy_allowed_in:
                    self.report(call, "`.numpy()`: use env.to_numpy(t) (detach, CPU, float32 for half precision)")
            model_call = (self.is_model(f, scope)
                          or isinstance(f, ast.Attribute) and f.attr == "generate"
                          or isinstance(f, ast.Attribute) and f.attr == "forward" and self.is_model(f.value, scope))
            if model_call:
                fed = list(call.args) + [k.value for k in call.keywords]
                for arg in fed:
                    if self.is_cpu(arg, scope):
                        self.report(call, f"`{ast.unparse(arg)}` is made on the CPU and fed to the model: "
                                          "create it with device= or move it with .to(model.device)")

    def report(self, node, rule):
        line = self.lines[node.lineno - 1].strip() if 0 < node.lineno <= len(self.lines) else ""
        self.findings.append(Finding(self.where, node.lineno, rule, line))

    # -- statements
    def bind(self, target, value, scope: _Scope, cpu: bool | None = None):
        cpu = self.is_cpu(value, scope) if cpu is None else cpu
        model = value is not None and self.binds_model(value, scope)
        for t in ast.walk(target) if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            if isinstance(t, ast.Name):
                (scope.cpu.add if cpu else scope.cpu.discard)(t.id)
                (scope.models.add if model else scope.models.discard)(t.id)

    def run(self, statements, scope: _Scope):
        for st in statements:
            self.statement(st, scope)

    def statement(self, st, scope: _Scope):
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = scope.copy()
            a = st.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                inner.cpu.discard(arg.arg)
                inner.models.discard(arg.arg)
            for d in a.defaults + [d for d in a.kw_defaults if d is not None]:
                self.check_calls(d, scope)
            outer, self.function = self.function, st.name
            self.run(st.body, inner)
            self.function = outer
            return
        if isinstance(st, ast.ClassDef):
            self.run(st.body, scope.copy())
            return
        if isinstance(st, ast.Assign):
            self.check_calls(st.value, scope)
            for t in st.targets:
                self.bind(t, st.value, scope)
            return
        if isinstance(st, (ast.AnnAssign, ast.AugAssign)):
            if st.value is not None:
                self.check_calls(st.value, scope)
                if isinstance(st, ast.AnnAssign):
                    self.bind(st.target, st.value, scope)
                elif self.is_cpu(st.value, scope) and isinstance(st.target, ast.Name):
                    scope.cpu.add(st.target.id)
            return
        if isinstance(st, (ast.For, ast.AsyncFor)):
            self.check_calls(st.iter, scope)
            self.bind(st.target, None, scope, cpu=self.is_cpu(st.iter, scope))
            self.run(st.body, scope)
            self.run(st.orelse, scope)
            return
        if isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                self.check_calls(item.context_expr, scope)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, item.context_expr, scope)
            self.run(st.body, scope)
            return
        if isinstance(st, (ast.If, ast.While)):
            self.check_calls(st.test, scope)
            self.run(st.body, scope)
            self.run(st.orelse, scope)
            return
        if isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            self.run(st.body, scope)
            for h in st.handlers:
                self.run(h.body, scope)
            self.run(st.orelse, scope)
            self.run(st.finalbody, scope)
            return
        if isinstance(st, ast.Match):
            self.check_calls(st.subject, scope)
            for case in st.cases:
                self.run(case.body, scope)
            return
        self.check_calls(st, scope)  # Expr, Return, Assert, Delete, Raise, ...


def code_cells(nb_path: Path) -> list[tuple[int, str]]:
    """(cell index, source) of the code cells, with `!`/`%` lines dropped and `%%` cells skipped."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if src.lstrip().startswith("%%"):
            continue
        lines = [("pass  # " + ln) if ln.lstrip().startswith(("!", "%")) else ln for ln in src.split("\n")]
        out.append((i, "\n".join(lines)))
    return out


def check_notebook(nb_path: Path) -> list[Finding]:
    scope, findings = _Scope(), []
    for i, src in code_cells(nb_path):
        c = Checker(f"{nb_path.name} cell {i}", src.split("\n"))
        c.run(ast.parse(src, filename=f"{nb_path.name} cell {i}").body, scope)
        findings += c.findings
    return findings


def check_module(path: Path) -> list[Finding]:
    src = path.read_text(encoding="utf-8")
    allowed = TO_NUMPY_HOME[1] if path.name == TO_NUMPY_HOME[0] else None
    c = Checker(str(path.relative_to(ROOT)), src.split("\n"), numpy_allowed_in=allowed)
    c.run(ast.parse(src, filename=str(path)).body, _Scope())
    return c.findings


# ---------------------------------------------------------------- the course and the package
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_device_hygiene(nb_path):
    findings = check_notebook(nb_path)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT / "gptforall_utils")) for p in MODULES])
def test_package_device_hygiene(path):
    findings = check_module(path)
    assert not findings, "\n".join(map(str, findings))


def test_there_is_something_to_check():
    assert len(NOTEBOOKS) >= 24 and any(p.name == "env.py" for p in MODULES)


# ---------------------------------------------------------------- the check itself, on synthetic notebooks
def _notebook(tmp_path, *cells) -> Path:
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "synthetic.ipynb"
    path.write_text(json.dumps(nb))
    return path


LOAD = ("import torch\nfrom gptforall_utils import env, models\n"
        "model = models.load_model('m')\ntok = models.load_tokenizer('m')\n")


def test_flags_a_tokenizer_batch_fed_to_the_model_across_cells(tmp_path):
    # notebook 11's predicted crash: the probe is made by the tokenizer (on the CPU), used in a later cell
    nb = _notebook(tmp_path, LOAD, "probe = tok(['a b c'], return_tensors='pt')", "%time\nout = model(**probe)")
    findings = check_notebook(nb)
    assert len(findings) == 1 and "probe" in findings[0].rule and "cell 2" in findings[0].where


@pytest.mark.parametrize("cell", [
    "ids = torch.tensor([[1, 2, 3]])\nlogits = model(input_ids=ids).logits",
    "ids = tok('a b', return_tensors='pt')['input_ids'][:, :2]\nout = model.generate(ids, max_new_tokens=2)",
    "enc = tok('a', return_tensors='pt')\nx = enc.input_ids.long()\nmodel.forward(x)",
    "def score(model, texts):\n    batch = tok(texts, return_tensors='pt', padding=True)\n    return model(**batch).logits",
    "ids = torch.randint(0, 10, (1, 4))\nfor row in ids:\n    model(row[None])",
    "tuned = models.load_model('m')\nnet = tuned\nnet(torch.zeros(1, 3, dtype=torch.long))",
    "mask = torch.ones(1, 3)\nmodel(**{'input_ids': ids_on_device, 'attention_mask': mask})",
])
def test_flags_cpu_tensors_fed_to_a_model(tmp_path, cell):
    assert len(check_notebook(_notebook(tmp_path, LOAD, cell))) == 1


@pytest.mark.parametrize("cell", [
    "ids = torch.tensor([[1, 2, 3]], device=model.device)\nlogits = model(input_ids=ids).logits",
    "batch = tok(['a'], return_tensors='pt').to(model.device)\nmodel.generate(**batch)",
    "ids = tok('a', return_tensors='pt')['input_ids']\nids = ids.to(model.device)\nmodel(ids)",
    "ids = tok('a', return_tensors='pt')['input_ids']\nn = ids.shape[1]\nmodel(ids.cuda(), max_length=n)",
    "ids = torch.arange(4)\nprint(tok.decode(ids))",  # a CPU tensor that never reaches a model
    "x = env.to_numpy(model(**tok('a', return_tensors='pt').to(model.device)).logits)",
])
def test_passes_tensors_made_on_the_models_device(tmp_path, cell):
    assert check_notebook(_notebook(tmp_path, LOAD, cell)) == []


@pytest.mark.parametrize("cell", [
    "logits = model(**tok('a', return_tensors='pt').to(model.device)).logits\nx = logits[0].numpy()",
    "w = model.lm_head.weight.detach().cpu().float().numpy()",
])
def test_flags_numpy_on_a_model_tensor(tmp_path, cell):
    findings = check_notebook(_notebook(tmp_path, LOAD, cell))
    assert len(findings) == 1 and "env.to_numpy" in findings[0].rule


def test_numpy_is_allowed_only_in_env_to_numpy(tmp_path):
    (tmp_path / "env.py").write_text("def to_numpy(t):\n    return t.cpu().numpy()\n"
                                     "def other(t):\n    return t.numpy()\n")
    c = Checker("env.py", (tmp_path / "env.py").read_text().split("\n"), numpy_allowed_in="to_numpy")
    c.run(ast.parse((tmp_path / "env.py").read_text()).body, _Scope())
    assert [f.line for f in c.findings] == [4]


def test_magics_are_dropped_and_line_numbers_kept(tmp_path):
    nb = _notebook(tmp_path, LOAD, "!pip list\n%matplotlib inline\nids = torch.ones(1, 2, dtype=torch.long)\nmodel(ids)",
                   "%%bash\necho model(ids)")
    findings = check_notebook(nb)
    assert [(f.where.split()[-1], f.line) for f in findings] == [("1", 4)]
