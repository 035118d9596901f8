"""The package's layers hold: every import in sam2cli/ goes down, never up or sideways across a
layer (README, Architecture). Read from the source with `ast`, so a lazy import inside a function
counts as much as one at the top of a file."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "sam2cli"

# What each package may import from sam2cli (itself always). `core` is the leaf under all of them.
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "model": {"errors", "core"},
    "io": {"errors", "core"},
    "engine": {"errors", "core", "model", "io"},
    "train": {"errors", "core", "model", "io", "engine"},
    "cli": {"errors", "core", "model", "io", "engine", "train", "root"},  # root: __version__
}


def layer_of(module: str) -> str:
    """'sam2cli.engine.track' -> 'engine'; the package root's own files name themselves."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = PKG):
    """(line, imported sam2cli module) for every import in a file, relative ones resolved."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "sam2cli" or name.startswith("sam2cli."):
                yield node.lineno, name


def violations(root: Path = PKG):
    out = []
    for path in sorted(root.rglob("*.py")):
        mine = layer_of(module_name(path, root))
        if mine == "root":  # sam2cli/__init__.py is the public API: it may re-export anything
            continue
        for line, name in imports_of(path, root):
            theirs = layer_of(name)
            if theirs not in (mine, *ALLOWED.get(mine, ())):
                out.append(f"{path.relative_to(root.parent)}:{line} ({mine}) imports {name} ({theirs})")
    return out


def test_every_package_has_a_layer():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert packages <= set(ALLOWED), f"give {sorted(packages - set(ALLOWED))} a place in ALLOWED and the README"


def test_imports_only_go_down():
    assert violations() == []


@pytest.mark.parametrize("importer, line", [
    ("io/prediction_json.py", "from sam2cli.engine.results import Results"),
    ("io/yolo_labels.py", "from sam2cli.engine.results import mask_to_polygon"),
    ("io/prompt_file.py", "    from sam2cli.engine.prompts import normalize_prompts"),  # lazy, in a function
    ("model/checkpoint.py", "from sam2cli.io.weights import resolve_weights"),
    ("engine/tracker.py", "from sam2cli.cli.args import resolve"),
    ("core/__init__.py", "from ..model import sam2"),
])
def test_the_check_catches_a_back_reference(tmp_path, importer, line):
    """Each back-reference #17 found (and a relative one) would fail the test above."""
    pkg = tmp_path / "sam2cli"
    target = pkg / importer
    target.parent.mkdir(parents=True)
    (target.parent / "__init__.py").touch()
    target.write_text(("def f():\n" if line.startswith(" ") else "") + line + "\n")
    assert len(violations(pkg)) == 1


def import_graph(root: Path = PKG) -> dict:
    """module -> the sam2cli modules it imports (a `from pkg import name` counts as pkg.name
    when that is a module, else as pkg)."""
    modules = {module_name(p, root) for p in root.rglob("*.py")}
    graph = {}
    for path in root.rglob("*.py"):
        me = module_name(path, root)
        graph[me] = set()
        for _, name in imports_of(path, root):
            if name in modules and name != me:
                graph[me].add(name)
    return graph


def cycles(graph: dict) -> list:
    """Every import cycle, found by depth-first search, each once (as its sorted member list)."""
    found, state = set(), {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.add(tuple(sorted(stack[stack.index(nxt):])))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return sorted(found)


def test_no_import_cycles_between_modules():
    """Modules in one package may import each other, but never in a circle (annotate and the Ray
    engine once did): a package's __init__ aside, every cycle is a tangle to cut."""
    graph = {m: {n for n in deps if not n.endswith("__init__")} for m, deps in import_graph().items()
             if m.count(".") > 1 or m == "sam2cli.errors"}
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]


# The commands' jobs, each a package under engine/; any other engine sub-package is library
JOBS = {"val", "annotate", "export", "benchmark", "app"}


def job_of(module: str):
    """'sam2cli.engine.val.vos' -> 'val'; a module of the engine library -> None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "engine" and parts[2] in JOBS else None


def job_violations(root: Path = PKG):
    """Imports that cross between jobs (engine/<job>/ packages), or that go from the engine
    library up into a job: each job stands on the library alone."""
    jobs = JOBS
    out = []
    for path in sorted((root / "engine").rglob("*.py")):
        me = module_name(path, root)
        mine = job_of(me if path.name != "__init__.py" else me + ".__init__")
        for line, name in imports_of(path, root):
            theirs = job_of(name) if name.count(".") > 2 else (name.split(".")[2] if name.count(".") == 2
                                                                and name.split(".")[2] in jobs else None)
            if theirs is not None and theirs != mine:
                out.append(f"{path.relative_to(root.parent)}:{line} ({mine or 'engine'}) imports {name} ({theirs})")
    return out


def test_jobs_never_import_each_other():
    assert job_violations() == []


def test_every_engine_package_is_a_job_or_named_library():
    """A new sub-package of engine/ is a job (add it to JOBS) or library (add it here)."""
    library = {"policies"}
    packages = {p.name for p in (PKG / "engine").iterdir() if (p / "__init__.py").exists()}
    assert packages <= JOBS | library, sorted(packages - JOBS - library)


@pytest.mark.parametrize("importer, line", [
    ("engine/val/job.py", "from sam2cli.engine.annotate.detectors import build_detector"),
    ("engine/annotate/job.py", "    from ..export.job import run_export"),  # lazy and relative
    ("engine/tracker.py", "from .val.vos import track_frames"),              # the library, up into a job
    ("engine/benchmark/job.py", "import sam2cli.engine.export.job"),
])
def test_the_job_check_catches_a_crossing(tmp_path, importer, line):
    pkg = tmp_path / "sam2cli"
    for job in ("val", "annotate", "export", "benchmark"):
        (pkg / "engine" / job).mkdir(parents=True, exist_ok=True)
        (pkg / "engine" / job / "__init__.py").touch()
    (pkg / "engine" / "__init__.py").touch()
    (pkg / importer).write_text(("def f():\n" if line.startswith(" ") else "") + line + "\n")
    assert len(job_violations(pkg)) == 1
