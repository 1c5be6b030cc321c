"""A PyTorch program, written for PyTorch: the second part of the 60-minute blitz, autograd (in
our own words): one training step of a small pretrained-style network, gradients of a
polynomial with ``backward(gradient=...)``, which tensors take part in the graph, and freezing
parameters to fine-tune only a new classifier. (The blitz loads torchvision's resnet18 with
downloaded weights; this port builds a small CNN of the same shape of use instead, since no
weights can be downloaded.) Runs on tinygrad_cnn with only its imports changed."""
import torch
from torch import nn, optim


class SmallNet(nn.Module):
    """Stands in for resnet18: a feature extractor and a final ``fc`` layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


model = SmallNet()
data = torch.rand(1, 3, 64, 64)
labels = torch.rand(1, 1000)

prediction = model(data)  # forward pass
loss = (prediction - labels).sum()
loss.backward()  # backward pass

optim_ = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
optim_.step()  # gradient descent

# ---- differentiation in autograd ----
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3 * a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
print(9 * a**2 == a.grad)
print(-2 * b == b.grad)
assert (9 * a**2 == a.grad).all() and (-2 * b == b.grad).all()

# ---- exclusion from the graph ----
x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")
assert not a.requires_grad and b.requires_grad

# ---- fine-tuning: freeze everything, then replace the classifier ----
for param in model.parameters():
    param.requires_grad = False
model.fc = nn.Linear(8, 10)  # the new layer's parameters require grad
optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
optimizer.zero_grad()
out = model(data).sum()
out.backward()
assert model.fc.weight.grad is not None
assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("fc."))
print("autograd: done")
