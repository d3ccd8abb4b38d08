"""The seed's ``rfa_toolbox.encodings.tensorflow_keras`` import path (Keras 3 models)."""
