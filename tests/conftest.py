"""Shared test settings.

Under pytest-xdist (`-n 2`, as .ci/run and the README run it) every worker and every script it
starts use one intra-op thread, so two workers share the two cores instead of four threads
fighting over them. Set before torch is imported by any test module.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
