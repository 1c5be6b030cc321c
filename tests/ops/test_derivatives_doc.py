"""docs/derivatives.md is generated from the primitives' docstrings, and is current."""
import importlib.util
import inspect
from pathlib import Path

import pytest

from tinygrad_cnn.autograd import Function
from tinygrad_cnn.ops.elementwise import BinaryOp

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("make_derivatives", ROOT / "scripts" / "make_derivatives.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_table_is_current():
    script = load_script()
    assert script.OUTPUT.read_text(encoding="utf-8") == script.render(), \
        "docs/derivatives.md is out of date: run python scripts/make_derivatives.py"


@pytest.mark.parametrize("name", load_script().MODULES)
def test_every_primitive_states_its_forward_gradient_tangent_and_batching_rule(name):
    script = load_script()
    module = importlib.import_module(f"tinygrad_cnn.ops.{name}")
    for cls in vars(module).values():
        if inspect.isclass(cls) and issubclass(cls, Function) and cls.__module__ == module.__name__ and cls is not BinaryOp:
            forward, gradients, tangents, batching = script.formulas(cls)
            assert forward and gradients and tangents and batching, \
                f"{cls.__name__}: its docstring must open with its forward, gradient, tangent (JVP:) and batching rule (vmap:)"
