"""The seed library's ``rfa_toolbox.utils`` package (graph helpers)."""
