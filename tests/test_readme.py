"""The README's Python examples run as written, in order, in one namespace."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files (graph.svg) write them here
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        # named as a block, not as README.md: inspect (and Hypothesis through it) would read the
        # file at the block's own line numbers and find other text there
        exec(compile(block, f"<README.md, python block {number}>", "exec"), namespace)
    # the CNN example trained one step and produced real gradients for every parameter
    model = namespace["model"]
    assert all(p.grad is not None and np.isfinite(p.grad.data).all() for p in model.parameters())
    # the custom-op example defines a property test: run it
    namespace["test_softplus"]()
    assert "Conv2d" in str(namespace["report"])
