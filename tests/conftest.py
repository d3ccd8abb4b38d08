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


def pytest_configure(config):
    """Every pytest process (with xdist, the controller too) keeps Hypothesis's example database
    and the workers that runs start outside any test (module-scoped fixtures) under tmp, not in
    the checkout; :func:`pytest_unconfigure` removes both."""
    config.rfa_lint_folders = [tempfile.mkdtemp(prefix="rfa-lint-tests-hypothesis-"),
                               tempfile.mkdtemp(prefix="rfa-lint-tests-workers-")]
    set_hypothesis_home_dir(config.rfa_lint_folders[0])
    os.environ[worker.FOLDER_VARIABLE] = config.rfa_lint_folders[1]


def pytest_unconfigure(config):
    worker.stop(every=True)  # those of this process's own folder: every test's own are stopped after it
    for folder in config.rfa_lint_folders:
        shutil.rmtree(folder, ignore_errors=True)


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
    with pytest.MonkeyPatch.context() as own:  # not the module's worker a test shares (warm_worker)
        own.setenv(worker.FOLDER_VARIABLE, str(home / "workers"))
        worker.stop(every=True)  # its connections in this process are lost then, and not used again


@pytest.fixture(scope="module")
def _module_workers(tmp_path_factory):
    """The worker folder of a module's tests that share one worker; stopped when the module ends."""
    folder = str(tmp_path_factory.mktemp("module-workers"))
    yield folder
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(worker.FOLDER_VARIABLE, folder)
        worker.stop(every=True)


@pytest.fixture
def warm_worker(_module_workers, monkeypatch):
    """The test's runs (in this process and in the commands it starts) use the worker the module's
    earlier tests started: the frameworks are imported once per module, not once per test.  For
    tests about findings, not about a worker's start; the cache stays the test's own."""
    monkeypatch.setenv(worker.FOLDER_VARIABLE, _module_workers)
