"""Tools to prove an op's gradient right.

- ``gradcheck``, ``gradgradcheck``, ``check_gradients``: numerical checks of first and second
  derivatives, and of any order with ``check_gradients(..., order=n)`` (NumPy only);
- ``check_jvp``, ``check_vjp_jvp_consistency``: forward mode, against central differences and
  against reverse mode (``check_gradients(..., modes=("rev", "fwd"))`` runs every check);
- ``check_batching_rule``: ``vmap(f)`` against a loop over the samples, in value, in both modes of
  derivatives and under two nested vmaps (``testing/batching.py``);
- ``check_dtype_preserved``: float32 in, float32 out, for results and gradients;
- ``tinygrad_cnn.testing.strategies``: Hypothesis strategies for shapes, tensors, kink-free and
  tie-free values, and valid convolution/pooling hyperparameters. It needs the optional
  dependency Hypothesis (``pip install tinygrad_cnn[testing]``), so it is not imported here.
"""
from .gradcheck import (
    GradcheckError,
    check_dtype_preserved,
    check_gradients,
    check_jvp,
    check_vjp_jvp_consistency,
    gradcheck,
    gradgradcheck,
)

from .batching import check_batching_rule

__all__ = ["GradcheckError", "check_batching_rule", "check_dtype_preserved", "check_gradients", "check_jvp",
           "check_vjp_jvp_consistency", "gradcheck", "gradgradcheck"]
