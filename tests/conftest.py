"""Suite-wide setup: torchvision is imported before anything can import tensorflow.

With tensorflow loaded first, a later ``import torchvision`` (triton) can segfault the process
(see INSTALL-NOTES); importing it here makes the suite safe in any test order.
"""

import os
import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from rfa_lint.sandbox import worker

# Hypothesis keeps its example database and caches under tmp, not in the checkout (removed at the end)
HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="rfa-lint-tests-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME)

# the background workers that runs start outside any test (module-scoped fixtures) live here
os.environ[worker.FOLDER_VARIABLE] = tempfile.mkdtemp(prefix="rfa-lint-tests-workers-")

# TensorFlow, imported in-process by the Keras frontend tests, is quiet only with both set
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

try:
    import torchvision  # noqa: F401
except ImportError:  # a machine without torch runs the framework-free tests only
    pass


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory, monkeypatch):
    """Every test, and every process it starts, caches and configures only inside its tmp folder:
    a second run must test the pipeline again, not read the first run's cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RFA_LINT_CACHE_DIR", str(home / "rfa-lint-cache"))
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    # the background workers a test's runs start live in its tmp folder, and end with it
    monkeypatch.setenv(worker.FOLDER_VARIABLE, str(home / "workers"))
    yield
    worker.stop()  # its connections in this process are lost then, and not used again


@pytest.fixture(autouse=True, scope="session")
def _nothing_outlives_the_suite():
    yield
    worker.stop()  # those of the session's own folder: every test's own are stopped after it
    shutil.rmtree(os.environ[worker.FOLDER_VARIABLE], ignore_errors=True)
    shutil.rmtree(HYPOTHESIS_HOME, ignore_errors=True)
