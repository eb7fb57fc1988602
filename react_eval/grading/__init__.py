"""Grading infrastructure shared by the benchmarks: declared interpreter
environments (:mod:`.envs`), the fresh grading sandbox from the run's provider
(:mod:`.sandbox`) and Docker images that carry an environment (:mod:`.images`)."""
