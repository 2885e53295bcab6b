"""Recipes: the course's notebook ideas as scripts that scale out with `accelerate launch`.

    python -m gptforall_utils.recipes.sft --help
"""
