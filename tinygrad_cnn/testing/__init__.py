"""Tools to prove an op's gradient right: numerical gradient checks (NumPy only)."""
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]
