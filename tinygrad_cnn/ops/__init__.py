"""The primitives: every op the graph can record, one module per family.

- ``elementwise``: Neg Exp Log Sqrt Tanh Sigmoid Relu Abs Cast Clip, Add Sub Mul Div Pow Maximum Where KeepWhere
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

Everything else (mean, var, softmax, cross-entropy, average pooling, max(dim), sort, cat, split, flip,
roll, repeat, logsumexp, norm, ...) is composed from these.
"""
