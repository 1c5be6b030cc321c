"""Run a PyTorch program on tinygrad_cnn by rewriting its import lines, and nothing else.

    python -m tinygrad_cnn.porting program.py [its arguments ...]   # run it here
    python -m tinygrad_cnn.porting --print program.py               # show the rewritten source

The rewrite is mechanical and touches only ``import`` and ``from ... import`` lines:

    import torch                         ->  import tinygrad_cnn as torch
    import torch.nn as nn                ->  import tinygrad_cnn.nn as nn
    from torch.optim.lr_scheduler import StepLR  ->  from tinygrad_cnn.optim.lr_scheduler import StepLR
    import torchvision                   ->  import tinygrad_cnn.vision as torchvision
    from torchvision import datasets     ->  from tinygrad_cnn.vision import datasets

(``torch.nn``, ``torch.nn.functional``, ``torch.optim``, ``torch.optim.lr_scheduler`` and
``torch.utils.data`` keep their paths under ``tinygrad_cnn``; ``torchvision`` becomes
``tinygrad_cnn.vision``.) A plain ``import torch.nn`` binds the name ``torch``, as Python does,
so it becomes two imports on one line. Everything else in the program is left as it is.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

_IMPORT = re.compile(r"^(?P<indent>\s*)import\s+(?P<names>[^#\n]+?)\s*(?P<comment>#.*)?$")
_FROM = re.compile(r"^(?P<indent>\s*)from\s+(?P<module>torchvision|torch)(?P<rest>(\.\w+)*)\s+import\s+")


def _module_path(name: str) -> str | None:
    """The tinygrad_cnn path of a torch or torchvision module path, or None for other modules."""
    head, _, rest = name.partition(".")
    if head == "torch":
        return "tinygrad_cnn" + ("." + rest if rest else "")
    if head == "torchvision":
        return "tinygrad_cnn.vision" + ("." + rest if rest else "")
    return None


def _rewrite_import(names: str) -> str | None:
    """``import a, b.c as d`` with every torch/torchvision module replaced; None if none is."""
    parts, changed = [], False
    for item in (part.strip() for part in names.split(",")):
        module, _, alias = (s.strip() for s in item.partition(" as "))
        target = _module_path(module)
        if target is None:
            parts.append(item)
            continue
        changed = True
        top = module.split(".")[0]
        if alias:
            parts.append(f"{target} as {alias}")
        elif "." in module:  # `import torch.nn` binds `torch`, with torch.nn loaded
            parts.append(f"{target}, {_module_path(top)} as {top}")
        else:
            parts.append(f"{target} as {top}")
    return ", ".join(parts) if changed else None


def rewrite_imports(source: str) -> str:
    """``source`` with its torch and torchvision imports pointed at tinygrad_cnn."""
    lines = []
    for line in source.splitlines(keepends=True):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        matched = _FROM.match(body)
        if matched:
            target = _module_path(matched["module"] + matched["rest"])
            body = f"{matched['indent']}from {target} import " + body[matched.end():]
        else:
            matched = _IMPORT.match(body)
            if matched:
                rewritten = _rewrite_import(matched["names"])
                if rewritten is not None:
                    comment = f"  {matched['comment']}" if matched["comment"] else ""
                    body = f"{matched['indent']}import {rewritten}{comment}"
        lines.append(body + newline)
    return "".join(lines)


def run(path: str, argv: list) -> None:
    """Run the program at ``path`` with its imports rewritten, as ``python path argv...`` would."""
    source = rewrite_imports(Path(path).read_text())
    sys.argv = [path, *argv]
    sys.path.insert(0, str(Path(path).resolve().parent))
    code = compile(source, path, "exec")
    globals_ = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    exec(code, globals_)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[0] + "\n\n" + __doc__.strip().split("\n\n")[1])
        return 0 if argv else 2
    if argv[0] == "--print":
        if len(argv) != 2:
            print("usage: python -m tinygrad_cnn.porting --print program.py", file=sys.stderr)
            return 2
        sys.stdout.write(rewrite_imports(Path(argv[1]).read_text()))
        return 0
    if not Path(argv[0]).is_file():
        print(f"tinygrad_cnn.porting: {argv[0]} is not a file", file=sys.stderr)
        return 2
    run(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
