"""Checks of notebook parameters, run in the cell right after the parameters cell, before anything
loads data or writes a file.

Each checker returns the value unchanged and raises `ParameterError` (a ValueError) whose message
names the parameter, what is allowed and what it got::

    checks.integer("epochs", epochs, 1)          # epochs must be an integer >= 1, got 0
    checks.number("lr", lr, 0, low_open=True)    # lr must be a number > 0, got -1
    checks.optional(checks.integer, "train_subset", train_subset, 2)
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path


class ParameterError(ValueError):
    """A parameter outside what is allowed."""

    def __init__(self, name: str, value, allowed: str):
        super().__init__(f"{name} must be {allowed}, got {value!r}")
        self.name, self.value, self.allowed = name, value, allowed


def fail(name: str, value, allowed: str):
    """Raise ParameterError: `name` must be `allowed`, got `value`."""
    raise ParameterError(name, value, allowed)


def _bounds(low, high, low_open=False, high_open=False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _within(value, low, high, low_open, high_open) -> bool:
    return ((low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open else value <= high)))


def integer(name: str, value, low=None, high=None, note: str = ""):
    """An int (not a bool, not 2.0) from `low` to `high` (either may be None); `note` says why."""
    allowed = " ".join(filter(None, ["an integer", _bounds(low, high), f"({note})" if note else ""]))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not _within(value, low, high, False, False):
        fail(name, value, allowed)
    return value


def number(name: str, value, low=None, high=None, low_open=False, high_open=False):
    """A finite int or float (not a bool) within the bounds; `*_open` excludes that bound."""
    allowed = " ".join(filter(None, ["a number", _bounds(low, high, low_open, high_open)]))
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or not _within(value, low, high, low_open, high_open)):
        fail(name, value, allowed)
    return value


def one_of(name: str, value, allowed):
    """One of `allowed` (compared with ==)."""
    if not any(type(value) is type(a) and value == a for a in allowed):
        fail(name, value, "one of " + ", ".join(repr(a) for a in allowed))
    return value


def boolean(name: str, value):
    """True or False (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        fail(name, value, "True or False")
    return value


def text(name: str, value, empty_ok: bool = False):
    """A str; empty only when `empty_ok`."""
    if not isinstance(value, str) or not (value or empty_ok):
        fail(name, value, "a string" + ("" if empty_ok else " (not empty)"))
    return value


def folder(name: str, value, empty_ok: bool = False):
    """A single folder (or file-name) part: a str without '/' or '\\', not '.' or '..'."""
    if not isinstance(value, str) or "/" in value or "\\" in value or value in (".", "..") or not (value or empty_ok):
        fail(name, value, "a folder name (no '/' or '\\', not '.' or '..'" + (", or empty)" if empty_ok else ", not empty)"))
    return value


def run_name(name: str, value, empty_ok: bool = False):
    """A run's name: one folder name or several joined by '/' (a sweep's subfolder, e.g.
    "lr_sweep/gru_h64_..."), each part as `folder` allows; never absolute, never '.' or '..'."""
    parts = value.split("/") if isinstance(value, str) and value else [value]
    for part in parts:
        if not isinstance(part, str) or "\\" in part or part in (".", "..") or not (part or (empty_ok and parts == [""])):
            fail(name, value, "a run name: folder names joined by '/' (no '\\', no empty part, not '.' or '..'"
                 + (", or empty)" if empty_ok else ", not empty)"))
    return value


def optional(check, name: str, value, *args, **kwargs):
    """None, or what `check(name, value, *args, **kwargs)` allows."""
    if value is None:
        return None
    try:
        return check(name, value, *args, **kwargs)
    except ParameterError as err:
        raise ParameterError(name, value, f"None or {err.allowed}") from None


def items(name: str, value, check, *args, **kwargs) -> list:
    """A non-empty list (or tuple) each of whose items `check(name, item, *args, **kwargs)` allows;
    returned as a list."""
    if not isinstance(value, (list, tuple)) or not value:
        fail(name, value, "a non-empty list")
    for item in value:
        try:
            check(name, item, *args, **kwargs)
        except ParameterError as err:
            raise ParameterError(name, value, f"a non-empty list, each item {err.allowed}") from None
    return list(value)


CHOSEN = ("lr", "T", "alpha", "batch_size", "dropout", "emb_dim")  # what a choice file of notebooks/choose.py may set


def choice_file(name: str, value, allowed=CHOSEN) -> dict:
    """The "choice" dict of a choice file written by notebooks/choose.py: `value` is a path, relative
    to the repo root or absolute; "" gives {} (nothing chosen). A notebook applies the result over its
    own parameters. Raises ParameterError naming `name` when the file is missing, is not a choice
    file, or sets a parameter outside `allowed` (None: anything)."""
    import json

    from . import paths

    if not isinstance(value, Path):
        text(name, value, empty_ok=True)
        if not value:
            return {}
    path = paths.ROOT / value
    if not path.is_file():
        fail(name, value, "'' or an existing choice file of notebooks/choose.py (make choices writes them)")
    try:
        chosen = json.loads(path.read_text())["choice"]
    except (ValueError, KeyError, TypeError):
        fail(name, value, 'a JSON file of notebooks/choose.py, with a "choice" object')
    unknown = sorted(set(chosen) - set(allowed)) if allowed is not None else []
    if unknown:
        fail(name, value, f"a choice file setting only {', '.join(allowed)} (this one sets {unknown})")
    return dict(chosen)


def teacher_tokens(name: str, teacher) -> int:
    """The most tokens the teacher `teacher` (a `models.resolve_teacher` name) takes: its tokenizer's
    model_max_length, else its config's max_position_embeddings. Loads the tokenizer (no data);
    raises ParameterError naming `name` when it cannot be loaded."""
    from . import models

    allowed = ("'auto', 'minilm', or a Hugging Face hub name or local model folder that loads "
               "(offline: 'minilm', 'auto' or a local folder)")
    text(name, teacher)
    try:
        tok = models.load_tokenizer(teacher)
        limit = tok.model_max_length
        if not limit or limit > 100_000:  # transformers' "no limit known" sentinel
            from transformers import AutoConfig

            limit = AutoConfig.from_pretrained(models.resolve_teacher(teacher)).max_position_embeddings
    except (OSError, ValueError, ImportError) as err:
        raise ParameterError(name, teacher, allowed) from err
    return int(limit)
