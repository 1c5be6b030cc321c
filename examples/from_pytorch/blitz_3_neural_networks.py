"""A PyTorch program, written for PyTorch: the third part of the 60-minute blitz, neural networks
(in our own words): define LeNet, look at its parameters, run it, compute a loss, follow the
graph back from the loss, backpropagate and update the weights by hand and with an optimizer.
Runs on tinygrad_cnn with only its imports changed.

One line differs from the blitz: it updates the weights with ``f.data.sub_(f.grad.data * lr)``.
In tinygrad_cnn ``.data`` is the NumPy array (the library's one deliberate difference from
PyTorch), which has no ``sub_``; ``f.data -= f.grad.data * lr`` means the same in both."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        c1 = F.relu(self.conv1(input))
        s2 = F.max_pool2d(c1, (2, 2))
        c3 = F.relu(self.conv2(s2))
        s4 = F.max_pool2d(c3, 2)
        s4 = torch.flatten(s4, 1)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


net = Net()
print(net)

params = list(net.parameters())
print(len(params))
print(params[0].size())  # conv1's .weight
assert len(params) == 10 and params[0].size() == (6, 1, 5, 5)

input = torch.randn(1, 1, 32, 32)
out = net(input)
print(out)
assert out.size() == (1, 10)

net.zero_grad()
out.backward(torch.randn(1, 10))

# ---- loss function ----
output = net(input)
target = torch.randn(10)  # a dummy target, for example
target = target.view(1, -1)  # make it the same shape as output
criterion = nn.MSELoss()

loss = criterion(output, target)
print(loss)

print(loss.grad_fn)  # MSELoss
print(loss.grad_fn.next_functions[0][0])  # the op before it
print(loss.grad_fn.next_functions[0][0].next_functions[0][0])

# ---- backprop ----
net.zero_grad()  # zeroes the gradient buffers of all parameters
print("conv1.bias.grad before backward")
print(net.conv1.bias.grad)
loss.backward()
print("conv1.bias.grad after backward")
print(net.conv1.bias.grad)
assert net.conv1.bias.grad is not None and net.conv1.bias.grad.size() == (6,)

# ---- update the weights: by hand ----
learning_rate = 0.01
for f in net.parameters():
    f.data -= f.grad.data * learning_rate

# ---- and with an optimizer ----
import torch.optim as optim

optimizer = optim.SGD(net.parameters(), lr=0.01)
optimizer.zero_grad()  # zero the gradient buffers
output = net(input)
loss = criterion(output, target)
loss.backward()
optimizer.step()  # does the update
print("neural networks: done")
