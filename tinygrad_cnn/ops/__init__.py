"""The primitives: every op the graph can record, one module per family. The math only: each
primitive's docstring opens with its forward, gradient and tangent formulas and its batching rule
(gathered in docs/derivatives.md), its ``forward`` calls a named kernel of the active set
(``kernels.active()``, see ``tinygrad_cnn/kernels/``), and its ``backward`` (reverse mode), ``jvp``
(forward mode) and ``vmap`` (how it computes a batch of samples at once, for ``func.vmap``) sit side
by side, written in Tensor ops, so they can be differentiated again. Where NumPy's own
function is the plain kernel (reshape, transpose, pad, indexing, abs, clip, a dtype cast),
``forward`` calls it directly.

- ``elementwise``: Neg Exp Log Sqrt Tanh TanhGrad Sigmoid Relu Abs Cast Clip; Add Sub Mul Div Pow Maximum
  (on one base, ``BinaryOp``); Where KeepWhere LocallyConstant
- ``reduce``: Sum Max
- ``movement``: Reshape Permute Expand Pad GetItem IndexAdd Concatenate
- ``matmul``: MatMul
- ``conv``: Conv2d Conv2dInputGrad Conv2dWeightGrad
- ``pool``: MaxPool2d WindowScatter WindowGather
- ``indexing``: Gather ScatterAdd (along one dimension, torch's gather/scatter_add)
- ``trigonometric``: Sin Cos
- ``scan``: Cumsum
- ``product``: Prod
- ``einsum``: Einsum
- ``special``: Erf
- ``batching``: the batching rules families share (elementwise, reductions, folding a batch into an
  op's own samples)

Everything else (mean, var, softmax, cross-entropy, average pooling, max(dim), sort, cat, split, flip,
roll, repeat, logsumexp, norm, ...) is composed from these.

A new primitive: a Function in the module of its family, its docstring opening with its formulas
(one a line: the forward, then ``dL/d<input> = ...`` for each input, then ``JVP: dy = ...``, then
``vmap: ...``), its ``backward``, ``jvp`` and ``vmap``, its kernel named in ``kernels/`` (see there),
and ``python scripts/make_derivatives.py`` to add it to the table.
"""
