"""The seed library's ``rfa_toolbox.encodings`` import paths, on rfa-lint's frontends.

Each subpackage imports its framework; ``import rfa_lint`` imports none of them.
"""
