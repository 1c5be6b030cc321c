"""Every example runs: each is started as a user would, with --quick (a tiny slice of the
embedded data, one epoch), and must finish cleanly and print its result line."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# example file -> text its output must contain
EXPECTED = {
    "seed_cnn_fashion_mnist.py": "test accuracy",
    "lenet.py": "final test accuracy",
    "cifar10.py": "final test accuracy",
    "mlp_vs_cnn.py": "shifted by 2 px",
    "per_sample_gradients.py": "test accuracy after DP-SGD",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_quickly(name):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick"], capture_output=True, text=True,
                            timeout=120, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert EXPECTED[name] in result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_says_what_it_shows(name):
    docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
    assert docstring and len(docstring.splitlines()) >= 3
