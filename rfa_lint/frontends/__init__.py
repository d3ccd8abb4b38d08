"""Framework frontends: a live model object -> plain receptive-field graph data.

Each frontend module (``torch``, ``keras``) offers the same four names, which the sandbox child
uses without knowing the framework:

- ``building_context()``: a context manager to build models in (no weight memory) that records
  the source site of every layer created inside it;
- ``is_model(obj)``: whether ``obj`` is a model of that framework;
- ``to_plain(model, input_shape=None)``: the model's graph as JSON-able data, in the form of
  :func:`rfa_lint.rf.graph.graph_to_plain` plus an ``"unsupported"`` list;
- the seed-named ``create_graph_from_*_model`` returning an ``EnrichedNetworkNode``.

Importing this package imports no framework.
"""


class TraceError(RuntimeError):
    """The model's data flow could not be recorded (its forward / call raised at every size)."""
