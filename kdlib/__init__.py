"""kdlib: the thin library behind the knowledge-distillation study.

Modules (import what you need, nothing is re-exported magically):
    paths    -- every path anchored at the repo root, the offline data folder
    data     -- IMDB / splice loading, splits, token-id caches, batching
    models   -- the Hugging Face teacher, GRU and CNN students
    losses   -- KD loss, nnPU, imbalanced nnPU
    train    -- seed_everything, fit, predict, online_distill
    metrics  -- classification metrics, calibration, latency, model size
"""
__version__ = "0.1.0"

# Puts the teachers' logits committed beside their runs back into a cache that lacks them (a fresh
# clone, Colab), so that a notebook opened by hand finds them: see kdlib/kept_logits.py.
from . import kept_logits  # noqa: E402,F401
