"""What a stand-in module answers for anything it does not implement (benchmarks/gpu_env/README.md)."""


def missing(module: str):
    def getattr_(name: str):
        if name.startswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")

        def unavailable(*_args, **_kwargs):
            raise RuntimeError(f"{module}.{name}: {module} is a stand-in on this machine (benchmarks/gpu_env)")

        return unavailable

    return getattr_
