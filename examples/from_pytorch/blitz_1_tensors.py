"""A PyTorch program, written for PyTorch: the first part of the 60-minute blitz, tensors (in our
own words): creating tensors from data, from NumPy and from other tensors, their attributes,
indexing, joining, arithmetic, in-place operations, and the memory a tensor shares with NumPy.
Runs on tinygrad_cnn with only its imports changed (``tests/test_from_pytorch.py``)."""
import numpy as np
import torch

# ---- initializing a tensor ----
data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
np_array = np.array(data)
x_np = torch.from_numpy(np_array)

x_ones = torch.ones_like(x_data)  # keeps the properties of x_data
print(f"Ones Tensor: \n {x_ones} \n")
x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the datatype of x_data
print(f"Random Tensor: \n {x_rand} \n")

shape = (2, 3,)
rand_tensor = torch.rand(shape)
ones_tensor = torch.ones(shape)
zeros_tensor = torch.zeros(shape)
print(f"Random Tensor: \n {rand_tensor} \n")
print(f"Ones Tensor: \n {ones_tensor} \n")
print(f"Zeros Tensor: \n {zeros_tensor}")

# ---- attributes of a tensor ----
tensor = torch.rand(3, 4)
print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")
assert tensor.shape == (3, 4) and tensor.dtype == torch.float32
assert x_data.dtype == torch.int64

# ---- operations ----
if torch.cuda.is_available():
    tensor = tensor.to("cuda")

tensor = torch.ones(4, 4)
print(f"First row: {tensor[0]}")
print(f"First column: {tensor[:, 0]}")
print(f"Last column: {tensor[..., -1]}")
tensor[:, 1] = 0
print(tensor)

t1 = torch.cat([tensor, tensor, tensor], dim=1)
print(t1)
assert t1.shape == (4, 12)

# matrix multiplication: y1, y2 and y3 hold the same value
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.rand_like(y1)
torch.matmul(tensor, tensor.T, out=y3)
assert torch.equal(y1, y2) and torch.equal(y1, y3)

# element-wise product: z1, z2 and z3 hold the same value
z1 = tensor * tensor
z2 = tensor.mul(tensor)
z3 = torch.rand_like(tensor)
torch.mul(tensor, tensor, out=z3)
assert torch.equal(z1, z2) and torch.equal(z1, z3)

agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))
assert agg_item == 12.0 and isinstance(agg_item, float)

print(f"{tensor} \n")
tensor.add_(5)
print(tensor)

# ---- bridge with NumPy: shared memory ----
t = torch.ones(5)
print(f"t: {t}")
n = t.numpy()
print(f"n: {n}")
t.add_(1)
print(f"t: {t}")
print(f"n: {n}")
assert n[0] == 2.0  # the change in the tensor shows in the NumPy array

n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(f"t: {t}")
print(f"n: {n}")
assert t[0].item() == 2.0  # and the change in the NumPy array shows in the tensor
print("tensors: done")
