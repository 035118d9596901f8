"""sam2cli: a fast, faithful from-scratch SAM 2 / SAM 2.1 tool and library."""

__version__ = "0.1.0"
__all__ = ["SAM", "Results", "__version__"]


def __getattr__(name):  # lazy: `import sam2cli` stays cheap for the CLI's --help
    if name == "SAM":
        from sam2cli.engine.sam import SAM
        return SAM
    if name == "Results":
        from sam2cli.core.results import Results
        return Results
    raise AttributeError(f"module 'sam2cli' has no attribute {name!r}")
