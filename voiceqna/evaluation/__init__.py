"""Evaluation tooling, out of the app's runtime path: error rates, test sets, test clips and
model conversion (used by evaluate.py, the benchmarks and the tests)."""
