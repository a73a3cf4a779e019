"""Reference implementations: the same computation written the straightforward way.

Not used by the pipeline. Tests check the fast paths against them (float64) and the
benchmarks measure against them; both import them from here. Nothing else in the
package imports this subpackage (tests/test_architecture.py).
"""
