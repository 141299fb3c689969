"""What made a run: the code, the notebook, the inputs and the teacher, as content hashes.

Every run records `record(...)` beside its metrics, and keys its checkpoint folder with
`run_key(...)`, so a finished checkpoint made by other code, parameters or inputs is never reused
silently. Paths are written relative to the repository root (`rel`), never as machine paths.

The code version of a run is two hashes, both blind to comments, docstrings and layout, and both
of the code that computes only (`computing_code`): `notebook_hash(name)`, of the notebook's
computing code, and `code_hash(name)`, of the kdlib definitions that code uses (the functions,
classes and module-level names it reaches, followed through kdlib, with the imports they read).
Left out of both: the cells tagged `install` (the install cell) and `asserts` (the checks a smoke
run enforces), and in cells tagged `checks` the statements that only check (a `checks.*` call, a
`print`, `raise` or `assert`, an `if` holding only those): editing them cannot move a number. The workflow (workflow/Snakefile) computes the same two and
passes them to its rules as parameters: a change of code reruns the runs whose notebook reaches
it, and only those.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import platform
import re
from pathlib import Path

from . import paths

PACKAGE = Path(__file__).resolve().parent


def _sha1_files(files, root: Path) -> str:
    h = hashlib.sha1()
    for f in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _code_text(node: ast.AST) -> str:
    """The code of `node` without comments, docstrings or layout (an AST dump)."""
    node = copy.deepcopy(node)
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if (isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            n.body = body[1:] or [ast.Pass()]
    return ast.dump(node)


def _kdlib_import(stmt: ast.AST, modules: set[str], in_package: bool) -> dict:
    """Local names a kdlib import binds: name -> ("module", m) or ("def", m, attr)."""
    out = {}
    if isinstance(stmt, ast.Import):
        for a in stmt.names:
            parts = a.name.split(".")
            if parts[0] == "kdlib":
                out[a.asname or "kdlib"] = ("module", parts[1] if len(parts) > 1 and a.asname else "__init__")
    elif isinstance(stmt, ast.ImportFrom):
        mod = stmt.module or ""
        if stmt.level and in_package:
            src = mod
        elif not stmt.level and (mod == "kdlib" or mod.startswith("kdlib.")):
            src = mod[len("kdlib."):] if "." in mod else ""
        else:
            return out
        for a in stmt.names:
            if not src and a.name in modules:
                out[a.asname or a.name] = ("module", a.name)
            else:
                out[a.asname or a.name] = ("def", src or "__init__", a.name)
    return out


def _bound(stmt: ast.AST) -> set[str]:
    """Names a top-level statement binds (not the local names of the functions it defines)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, ast.alias):
        return {stmt.asname or stmt.name.split(".")[0]}
    if isinstance(stmt, ast.Name):
        return {stmt.id} if isinstance(stmt.ctx, ast.Store) else set()
    return set().union(set(), *[_bound(c) for c in ast.iter_child_nodes(stmt)])


def _refs(node: ast.AST, aliases: dict, local: set[str], module: str) -> set[tuple[str, str]]:
    """The kdlib definitions `node` reads: (module, name); name "*" is the whole module."""
    out, attr_of = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and aliases.get(n.value.id, ("",))[0] == "module":
            out.add((aliases[n.value.id][1], n.attr))
            attr_of.add(id(n.value))
    for n in ast.walk(node):
        if not isinstance(n, ast.Name) or id(n) in attr_of:
            continue
        if n.id in aliases:
            a = aliases[n.id]
            out.add((a[1], "*") if a[0] == "module" else (a[1], a[2]))
        elif n.id in local:
            out.add((module, n.id))
    return out


def _parse_package(package: Path) -> dict:
    """module -> {"units": name -> [code texts], "refs": name -> refs, "always": [unit names]}."""
    modules = {p.stem for p in package.glob("*.py")}
    table = {}
    for m in sorted(modules):
        tree = ast.parse((package / f"{m}.py").read_text())
        aliases = {}
        for n in ast.walk(tree):
            aliases.update(_kdlib_import(n, modules, in_package=True))
        units, nodes, always = {}, {}, []
        for i, stmt in enumerate(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)) and _kdlib_import(stmt, modules, True):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # the module's docstring
            names = _bound(stmt)
            plain = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                                      ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom))
            if not plain:  # if/try/with/calls at module level: part of the module whatever is used
                names = {f"<statement {i}>"} | names
                always.append(f"<statement {i}>")
            for name in names:
                units.setdefault(name, []).append(_code_text(stmt))
                nodes.setdefault(name, []).append(stmt)
        local = set(units)
        refs = {name: set().union(*[_refs(s, aliases, local, m) for s in stmts]) for name, stmts in nodes.items()}
        table[m] = {"units": units, "refs": refs, "always": always}
    return table


def used_code(notebook: str | Path, package: Path | None = None, table: dict | None = None) -> set:
    """The kdlib definitions `notebook` (a name under notebooks/, or a file) reaches: (module, name)."""
    table = table or _parse_package(Path(package or PACKAGE))
    tree = computing_code(notebook)
    aliases = {}
    for n in ast.walk(tree):
        aliases.update(_kdlib_import(n, set(table), in_package=False))
    todo, seen = list(_refs(tree, aliases, set(), "")), set()
    while todo:
        m, name = todo.pop()
        if (m, name) in seen or m not in table:
            continue
        seen.add((m, name))
        unit = table[m]
        todo.extend((m, a) for a in unit["always"])
        if name == "*":
            todo.extend((m, n) for n in unit["units"])
        elif name in table and m == "__init__":
            todo.append((name, "*"))  # kdlib.<module> used through the package
        elif name not in unit["units"]:
            todo.append((m, "*"))  # a name kdlib does not define plainly: count the module whole
        else:
            todo.extend(unit["refs"][name])
    return seen


def code_hash(notebook: str | Path, package: Path | None = None) -> str:
    """sha1 (12 hex) of the kdlib definitions `notebook` (a name under notebooks/, or a file) uses:
    every function, class and module-level name it reaches, followed through kdlib, with the
    imports they read; a module used as a whole (passed around, not as `module.name`) counts whole.
    A change elsewhere in kdlib, or to a comment or docstring, leaves it unchanged."""
    table = _parse_package(Path(package or PACKAGE))
    seen = used_code(notebook, table=table)
    h = hashlib.sha1()
    for m, name in sorted(k for k in seen if k[1] != "*"):
        for text in table[m]["units"].get(name, []):
            h.update(f"{m}.{name}\0{text}\0".encode())
    return h.hexdigest()[:12]


def file_hash(path: str | Path) -> str:
    """sha1 (12 hex) of a file's bytes, or of a folder's files (by relative name and content)."""
    path = Path(path)
    if path.is_dir():
        return _sha1_files([p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts], path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot hash {path}: no such file or folder")
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def notebook_hash(name: str | Path) -> str:
    """sha1 (12 hex) of the computing code of the jupytext source notebooks/<name>.py (what papermill
    runs is made from it), or of a .py file: its markdown, comments, layout, install cell, checks
    and asserts do not count (`computing_code`)."""
    return hashlib.sha1(_code_text(computing_code(name)).encode()).hexdigest()[:12]


UNKEYED = ("install", "asserts")  # cells left out of a run's key whole
CHECKS = "checks"                 # cells whose check statements are left out of it
_CELL = re.compile(r"(?m)^# %%(.*)$")
_TAGS = re.compile(r"tags=\[([^\]]*)\]")


def cells(name: str | Path) -> list[tuple[set[str], str]]:
    """The code cells of a jupytext percent notebook (or a plain .py file: one cell): (tags, source)."""
    path = Path(name) if Path(name).suffix == ".py" else paths.NOTEBOOKS / f"{name}.py"
    text = path.read_text()
    heads = list(_CELL.finditer(text))
    out = [(set(), text[:heads[0].start()] if heads else text)]
    for i, h in enumerate(heads):
        body = text[h.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        if "[markdown]" in h.group(1):
            continue
        tags = _TAGS.search(h.group(1))
        out.append(({t.strip().strip("\"'") for t in tags.group(1).split(",")} if tags else set(), body))
    return out


def is_check(stmt: ast.stmt) -> bool:
    """A statement that only checks: a call of `checks.<fn>` or `print`, `raise`, `assert`, `pass`,
    or an `if` whose branches hold only such statements (and whose test binds no name)."""
    if isinstance(stmt, (ast.Raise, ast.Assert, ast.Pass)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        f = stmt.value.func
        return ((isinstance(f, ast.Name) and f.id == "print")
                or (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "checks"))
    if isinstance(stmt, ast.If):
        return (not any(isinstance(n, ast.NamedExpr) for n in ast.walk(stmt.test))
                and all(is_check(s) for s in stmt.body + stmt.orelse))
    return False


def computing_code(name: str | Path) -> ast.Module:
    """The code of a notebook that computes: every code cell but those tagged `install` or `asserts`,
    and in cells tagged `checks` every statement but the checks (`is_check`)."""
    body = []
    for tags, source in cells(name):
        if tags & set(UNKEYED):
            continue
        stmts = ast.parse(source).body
        body += [s for s in stmts if not is_check(s)] if CHECKS in tags else stmts
    return ast.Module(body=body, type_ignores=[])


def rel(path: str | Path) -> str:
    """`path` relative to the repository root; outside it, relative to the data folder
    (``<data>/...``) or named by its last two parts (``<external>/parent/name``): never a
    machine's absolute path."""
    path = Path(path).resolve()
    if path.is_relative_to(paths.ROOT):
        return path.relative_to(paths.ROOT).as_posix()
    data = paths.data_dir(required=False)
    if data is not None and path.is_relative_to(data):
        return "<data>/" + path.relative_to(data).as_posix()
    return "<external>/" + "/".join(path.parts[-2:])


def run_key(notebook: str, *parts) -> str:
    """A short hash of the code version of `notebook` (its code and the kdlib code it uses) and
    `parts` (parameters, input hashes): the name of a run's checkpoint folder, so that a checkpoint
    made by other code or inputs is never resumed from."""
    blob = json.dumps([code_hash(notebook), notebook_hash(notebook), *parts], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def record(notebook: str, inputs: dict | None = None, teacher: dict | None = None, **extra) -> dict:
    """The provenance block of a run: the hash of the kdlib code the notebook uses, the notebook's
    hash, the hashes of its inputs (name -> hash), the resolved teacher (name, path relative to the root, weights hash),
    library versions, and anything in `extra` (e.g. the determinism settings)."""
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for lib in ("transformers", "numpy", "sklearn"):
        try:
            versions[lib] = __import__(lib).__version__
        except ImportError:  # pragma: no cover - optional
            pass
    return {"kdlib_code": code_hash(notebook), "notebook": {"name": notebook, "hash": notebook_hash(notebook)},
            "inputs": dict(inputs or {}), "teacher": teacher, "versions": versions, "machine": machine(), **extra}


# the CPU features that pick torch's float kernels (and so the last bits of a run's numbers)
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine() -> dict:
    """The processor a run ran on: CPU model, its vector instruction set as torch uses it (e.g. AVX2,
    AVX512) and the flags above it has, and the GPU when one is used. A run repeats bit for bit
    on the same machine, not across these (docs/methods.md, "What every number stands on")."""
    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    return {"cpu": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": [f for f in VECTOR_FLAGS if f in flags],
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def set_determinism(device) -> dict:
    """Make this process's training repeat exactly on `device`, and say how.

    CPU kernels are deterministic already; on CUDA this sets cuBLAS's workspace, turns
    ``torch.use_deterministic_algorithms`` on and cuDNN's benchmark off. The returned dict goes in
    the run's record."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return {"device": str(device), "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
