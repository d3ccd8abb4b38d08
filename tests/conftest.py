"""Suite-wide setup: torchvision is imported before anything can import tensorflow.

With tensorflow loaded first, a later ``import torchvision`` (triton) can segfault the process
(see INSTALL-NOTES); importing it here makes the suite safe in any test order.
"""

try:
    import torchvision  # noqa: F401
except ImportError:  # a machine without torch runs the framework-free tests only
    pass
