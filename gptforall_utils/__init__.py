"""gptforall_utils: the thin, tested helper package behind the GPTforAll notebooks.

One module per concept (see DESIGN.md): env, assets, models, data, memory, quantization,
prompts, training, metrics, plots, course. Import the one you need, e.g.
`from gptforall_utils import env, models`.
"""

__version__ = "0.1.0"
