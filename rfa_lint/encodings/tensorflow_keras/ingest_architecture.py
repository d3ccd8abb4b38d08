"""The seed's ``rfa_toolbox.encodings.tensorflow_keras.ingest_architecture`` name:
``create_graph_from_model(model, filter_rf=None)`` is rfa-lint's Keras frontend."""

from rfa_lint.frontends.keras import create_graph_from_tensorflow_model as create_graph_from_model

__all__ = ["create_graph_from_model"]
