"""gptforall_utils: the thin, tested helper package behind the GPTforAll notebooks.

One module per concept (docs/DESIGN.md describes each): env, assets, models, data, memory,
quantization, prompts, training, metrics, plots, export, recipes, notebooks, course. Import the one
you need, e.g. `from gptforall_utils import env, models`.
"""

__version__ = "0.1.0"
