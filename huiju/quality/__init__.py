"""Data quality with Great Expectations: custom expectations, suites in ``expectations/``, the runner.

GX is heavy (seconds to import): nothing here imports it at module level except
:mod:`huiju.quality.expectations`, which only the runner imports, inside functions.
"""
