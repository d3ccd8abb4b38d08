"""Suite-wide setup: torchvision is imported before anything can import tensorflow.

With tensorflow loaded first, a later ``import torchvision`` (triton) can segfault the process
(see INSTALL-NOTES); importing it here makes the suite safe in any test order.
"""

import os

# TensorFlow, imported in-process by the Keras frontend tests, is quiet only with both set
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

try:
    import torchvision  # noqa: F401
except ImportError:  # a machine without torch runs the framework-free tests only
    pass
