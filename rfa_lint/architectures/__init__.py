"""Hand-built RF graphs of classic architectures (the seed's ``rfa_toolbox.architectures``),
written from the papers' tables; no framework needed."""
