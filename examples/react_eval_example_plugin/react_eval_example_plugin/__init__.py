"""An example react-eval plugin package: each part is one module, registered by
one entry point in pyproject.toml (or named by class path in YAML)."""
