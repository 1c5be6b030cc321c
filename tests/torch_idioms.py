"""Everyday PyTorch idioms, each a few lines that must run unchanged with ``torch`` being either
PyTorch or tinygrad_cnn. ``tests/test_torch_compatibility.py`` runs each on both (PyTorch where it
is installed, to prove the idiom is real PyTorch) and writes ``docs/torch_compatibility.md``.

Each snippet runs in a fresh namespace holding ``torch``, ``nn``, ``F``, ``optim``, ``np`` and a
few tensors: ``x`` (3, 4) float32, ``img`` (2, 3, 8, 8) float32, ``labels`` (3,) int64 in 0..3.
A snippet asserts what its result must be, so "works" means "gives torch's answer".
"""

SETUP = """
import numpy as np
g = np.random.default_rng(0)
x = torch.tensor(g.standard_normal((3, 4)).astype(np.float32))
img = torch.tensor(g.standard_normal((2, 3, 8, 8)).astype(np.float32))
labels = torch.tensor([0, 3, 1])
"""

IDIOMS = {
    "Creating tensors": [
        ("torch.tensor from lists (int64 / float32)", "assert torch.tensor([1, 2]).dtype == torch.int64\nassert torch.tensor([1.0, 2]).dtype == torch.float32"),
        ("torch.tensor(..., dtype=, requires_grad=)", "t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)\nassert t.requires_grad and t.dtype == torch.float64"),
        ("torch.from_numpy shares memory", "a = np.zeros(3)\nt = torch.from_numpy(a)\na[0] = 5\nassert t[0].item() == 5"),
        ("torch.as_tensor", "assert torch.as_tensor([1.5]).dtype == torch.float32"),
        ("zeros / ones / full / empty with sizes", "assert torch.zeros(2, 3).shape == (2, 3)\nassert torch.ones((2, 3)).shape == (2, 3)\nassert torch.full((2, 2), 7.0)[1, 1].item() == 7\nassert torch.empty(4, 5).shape == (4, 5)"),
        ("*_like", "assert torch.zeros_like(x).shape == x.shape and torch.ones_like(x).dtype == x.dtype\nassert torch.full_like(x, 2.0).sum().item() == 24"),
        ("rand_like / randn_like / randint", "assert torch.rand_like(x).shape == x.shape and torch.randn_like(x).shape == x.shape\nr = torch.randint(0, 5, (10,))\nassert r.dtype == torch.int64 and (r >= 0).all() and (r < 5).all()"),
        ("arange dtype rule", "assert torch.arange(5).dtype == torch.int64\nassert torch.arange(0, 1, 0.25).dtype == torch.float32\nassert torch.arange(5).tolist() == [0, 1, 2, 3, 4]"),
        ("linspace / eye", "assert torch.linspace(0, 1, 5)[-1].item() == 1.0\nassert torch.eye(3).sum().item() == 3"),
        ("manual_seed repeats", "torch.manual_seed(3); a = torch.randn(4)\ntorch.manual_seed(3); b = torch.randn(4)\nassert torch.equal(a, b)"),
        ("dtype names on the module", "assert torch.float32 != torch.float64 and torch.long == torch.int64 and torch.float == torch.float32"),
    ],
    "Attributes and conversion": [
        ("size() and size(d)", "assert x.size() == (3, 4) and x.size(0) == 3 and x.size(-1) == 4"),
        ("shape / ndim / dim() / numel()", "assert x.shape == (3, 4) and x.ndim == 2 and x.dim() == 2 and x.numel() == 12"),
        ("len() and iteration over rows", "assert len(x) == 3\nrows = [r for r in x]\nassert len(rows) == 3 and rows[0].shape == (4,)"),
        (".item() / .tolist() / float()", "assert isinstance(x.sum().item(), float) and len(x.tolist()) == 3 and isinstance(float(x[0, 0]), float)"),
        (".long() .int() .float() .double() .bool()", "assert x.long().dtype == torch.int64 and x.int().dtype == torch.int32\nassert x.double().dtype == torch.float64 and x.double().float().dtype == torch.float32 and x.bool().dtype == torch.bool"),
        (".to(dtype) / .to('cpu') / .cpu() / .device", "assert x.to(torch.float64).dtype == torch.float64\nassert x.to('cpu').shape == x.shape and x.cpu().shape == x.shape\nassert str(x.device) == 'cpu'"),
        ("torch.device and .to(device)", "device = torch.device('cpu')\nassert x.to(device).shape == x.shape"),
        ("torch.cuda.is_available()", "assert torch.cuda.is_available() in (True, False)"),
        (".numpy() and np.asarray(t)", "assert np.asarray(x).shape == (3, 4) and np.asarray(x).dtype == np.float32\nassert x.numpy().shape == (3, 4)"),
        ("bool(t) and int index from a 0-d tensor", "assert bool(torch.tensor(1.0))\nassert ['a', 'b', 'c'][torch.tensor(2)] == 'c'"),
        ("requires_grad_() / detach() / clone()", "t = torch.zeros(2).requires_grad_()\nassert t.requires_grad and not t.detach().requires_grad\nassert torch.equal(t.clone(), t)"),
    ],
    "Indexing, views and joining": [
        ("slicing and assignment", "t = torch.ones(4, 4)\nt[:, 1] = 0\nassert t.sum().item() == 12 and t[..., -1].shape == (4,)"),
        ("boolean mask indexing", "assert x[x > 0].ndim == 1"),
        ("view / reshape / view_as / view(-1)", "assert x.view(4, 3).shape == (4, 3) and x.reshape(-1).shape == (12,)\nassert x.view(2, -1).shape == (2, 6) and x.view_as(torch.zeros(12)).shape == (12,)"),
        ("transpose(d0, d1) swaps two dims", "t = torch.zeros(2, 3, 4)\nassert t.transpose(0, 1).shape == (3, 2, 4) and t.transpose(-1, -2).shape == (2, 4, 3)"),
        ("t() and .T", "assert x.t().shape == (4, 3) and x.T.shape == (4, 3)"),
        ("permute", "assert img.permute(0, 2, 3, 1).shape == (2, 8, 8, 3)"),
        ("flatten(x, 1) / x.flatten(1)", "assert torch.flatten(img, 1).shape == (2, 192) and img.flatten(1).shape == (2, 192) and img.flatten().shape == (384,)"),
        ("squeeze / unsqueeze with dim", "assert x.unsqueeze(0).shape == (1, 3, 4) and x.unsqueeze(-1).squeeze(-1).shape == (3, 4)"),
        ("torch.cat(dim=)", "assert torch.cat([x, x, x], dim=1).shape == (3, 12) and torch.cat((x, x)).shape == (6, 4)"),
        ("torch.stack(dim=)", "assert torch.stack([x, x], dim=1).shape == (3, 2, 4)"),
        ("split / chunk", "parts = torch.split(x, 2, dim=1)\nassert [p.shape for p in parts] == [(3, 2), (3, 2)]\nassert len(x.chunk(3, dim=0)) == 3"),
        ("gather / index_select", "idx = torch.tensor([[0], [1], [2]])\nassert x.gather(1, idx).shape == (3, 1)\nassert torch.index_select(x, 1, torch.tensor([0, 2])).shape == (3, 2)"),
        ("scatter / scatter_add", "z = torch.zeros(3, 4)\nassert z.scatter(1, torch.tensor([[1], [2], [3]]), 1.0).sum().item() == 3\nassert z.scatter_add(1, torch.tensor([[0, 0]] * 3), torch.ones(3, 2))[:, 0].tolist() == [2, 2, 2]"),
        ("masked_fill / where", "assert (x.masked_fill(x < 0, 0.0) >= 0).all()\nassert torch.where(x > 0, x, torch.zeros_like(x)).min().item() >= 0"),
        ("expand / repeat", "assert torch.ones(3, 1).expand(3, 4).shape == (3, 4) and torch.ones(2, 2).repeat(2, 3).shape == (4, 6)"),
        ("flip / roll", "assert torch.flip(torch.arange(4), [0]).tolist() == [3, 2, 1, 0] and torch.roll(torch.arange(4), 1).tolist() == [3, 0, 1, 2]"),
        ("one_hot", "assert F.one_hot(labels, num_classes=4).shape == (3, 4)"),
    ],
    "Reductions": [
        ("_, pred = out.max(1) returns values and indices", "values, indices = x.max(1)\nassert values.shape == (3,) and indices.dtype == torch.int64\nassert torch.equal(indices, x.argmax(1))"),
        ("torch.max(x, 1) and .values / .indices", "r = torch.max(x, 1)\nassert torch.equal(r.values, x.max(dim=1)[0]) and torch.equal(r.indices, x.argmax(dim=1))"),
        ("max() without dim is a scalar tensor", "assert x.max().shape == () and x.min().ndim == 0"),
        ("argmax(dim=1, keepdim=True)", "assert x.argmax(dim=1, keepdim=True).shape == (3, 1)"),
        ("sum / mean with dim and keepdim", "assert x.sum(dim=1, keepdim=True).shape == (3, 1) and x.mean(0).shape == (4,) and x.sum((0, 1)).shape == ()"),
        ("var / std are unbiased by default", "a = torch.tensor([1.0, 2.0, 3.0, 4.0])\nassert abs(a.var().item() - 5 / 3) < 1e-6 and abs(a.var(unbiased=False).item() - 1.25) < 1e-6\nassert abs(a.std(correction=0).item() - 1.25 ** 0.5) < 1e-6"),
        ("amax / amin", "assert x.amax(dim=1).shape == (3,) and x.amin().ndim == 0"),
        ("sort / argsort / topk", "v, i = x.sort(dim=1, descending=True)\nassert (v[:, 0] >= v[:, 1]).all() and torch.equal(i, x.argsort(dim=1, descending=True))\nassert x.topk(2, dim=1).values.shape == (3, 2)"),
        ("all / any", "assert (x.abs() >= 0).all() and (x > 0).any() in (True, False)"),
        ("logsumexp / cumsum / prod / norm", "assert x.logsumexp(dim=1).shape == (3,) and x.cumsum(dim=1).shape == (3, 4)\nassert x.prod(1).shape == (3,) and x.norm().ndim == 0 and x.norm(dim=1).shape == (3,)"),
        ("eq / ne / lt / ... and .sum().item() for accuracy", "pred = x.argmax(dim=1, keepdim=True)\ncorrect = pred.eq(labels.view_as(pred)).sum().item()\nassert isinstance(correct, int)\nassert (x.lt(0) | x.ge(0)).all() and x.ne(x).sum().item() == 0"),
        ("(predicted == labels).sum().item()", "_, predicted = torch.max(x, 1)\nassert isinstance((predicted == labels).sum().item(), int)"),
    ],
    "Math": [
        ("arithmetic with scalars and broadcasting", "y = 2 * x + 1 - x / 2\nassert y.shape == (3, 4) and (x + torch.ones(4)).shape == (3, 4)"),
        ("matmul / @ / mm / bmm", "assert (x @ x.T).shape == (3, 3) and torch.matmul(x, x.t()).shape == (3, 3) and torch.mm(x, x.t()).shape == (3, 3)\nassert torch.bmm(img[:, 0], img[:, 1]).shape == (2, 8, 8)"),
        ("matmul(out=) / mul(out=)", "out = torch.empty(3, 3)\ntorch.matmul(x, x.T, out=out)\nassert torch.allclose(out, x @ x.T)\nz = torch.empty(3, 4)\ntorch.mul(x, x, out=z)\nassert torch.equal(z, x * x)"),
        ("einsum", "assert torch.einsum('ij,kj->ik', x, x).shape == (3, 3)"),
        ("float math on an integer tensor gives float32", "r = torch.sigmoid(torch.tensor([0, 1, 2]))\nassert r.dtype == torch.float32 and abs(r[1].item() - 0.7310586) < 1e-6\nassert torch.tensor([4]).sqrt().dtype == torch.float32"),
        ("exp / log / sqrt / sin / cos / tanh / sigmoid", "y = x.abs() + 1\nfor f in (torch.exp, torch.log, torch.sqrt, torch.sin, torch.cos, torch.tanh, torch.sigmoid):\n    assert f(y).shape == y.shape"),
        ("pow / ** / abs() builtin", "assert torch.equal(x.pow(2), x ** 2) and torch.equal(abs(x), x.abs())"),
        ("clamp(min, max) / clip", "assert x.clamp(-0.5, 0.5).abs().max().item() <= 0.5 and x.clamp(min=0).min().item() >= 0 and x.clip(max=0).max().item() <= 0"),
        ("torch.allclose / torch.equal / isclose", "assert torch.allclose(x, x + 1e-9) and torch.equal(x, x.clone())"),
        ("in-place add_ / mul_ / zero_ / fill_", "t = torch.ones(3)\nt.add_(1).mul_(3)\nassert t.tolist() == [6, 6, 6]\nt.zero_()\nassert t.sum().item() == 0"),
        ("softmax / log_softmax with dim", "assert torch.allclose(F.softmax(x, dim=1).sum(1), torch.ones(3))\nassert torch.softmax(x, dim=-1).shape == x.shape and x.softmax(1).shape == x.shape and x.log_softmax(1).shape == x.shape"),
    ],
    "Autograd": [
        ("backward on a scalar, .grad", "w = torch.randn(4, requires_grad=True)\n(x @ w).sum().backward()\nassert w.grad.shape == (4,)"),
        ("backward(gradient=...)", "a = torch.tensor([2.0, 3.0], requires_grad=True)\nq = 3 * a ** 3\nq.backward(gradient=torch.tensor([1.0, 1.0]))\nassert torch.allclose(a.grad, 9 * a ** 2)"),
        ("torch.no_grad() and decorator", "with torch.no_grad():\n    y = x * 2\nassert not y.requires_grad\n@torch.no_grad()\ndef f(t):\n    return t * 2\nassert not f(torch.ones(2, requires_grad=True)).requires_grad"),
        ("torch.autograd.grad with create_graph", "a = torch.tensor([1.5], requires_grad=True)\n(g,) = torch.autograd.grad(a ** 3, a, create_graph=True)\n(h,) = torch.autograd.grad(g, a)\nassert abs(h.item() - 9.0) < 1e-5"),
        ("grad_fn and next_functions", "w = torch.randn(4, requires_grad=True)\ny = (x @ w).sum()\nassert y.grad_fn is not None and y.grad_fn.next_functions[0][0] is not None"),
        ("requires_grad = False on a parameter", "lin = nn.Linear(4, 2)\nlin.weight.requires_grad = False\nlin(x).sum().backward()\nassert lin.weight.grad is None and lin.bias.grad is not None"),
        ("Hessian of a piecewise-linear function is zeros", "a = torch.randn(5, requires_grad=True)\n(g,) = torch.autograd.grad(F.relu(a).sum(), a, create_graph=True)\n(h,) = torch.autograd.grad(g.sum(), a, allow_unused=True)\nassert h is None or (h == 0).all()"),
    ],
    "Layers": [
        ("Linear / Conv2d / MaxPool2d / Sequential", "net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))\nassert net(img).shape == (2, 10)"),
        ("Conv1d", "assert nn.Conv1d(3, 5, 3)(torch.randn(2, 3, 10)).shape == (2, 5, 8)"),
        ("ConvTranspose2d", "assert nn.ConvTranspose2d(3, 2, 2, stride=2)(img).shape == (2, 2, 16, 16)"),
        ("AdaptiveAvgPool2d / AdaptiveMaxPool2d", "assert nn.AdaptiveAvgPool2d((1, 1))(img).shape == (2, 3, 1, 1) and nn.AdaptiveMaxPool2d(3)(img).shape == (2, 3, 3, 3)"),
        ("BatchNorm2d / LayerNorm / GroupNorm", "assert nn.BatchNorm2d(3)(img).shape == img.shape and nn.LayerNorm(8)(img).shape == img.shape and nn.GroupNorm(1, 3)(img).shape == img.shape"),
        ("Embedding", "assert nn.Embedding(10, 3)(torch.tensor([[1, 2], [3, 4]])).shape == (2, 2, 3)"),
        ("nn.ReLU(inplace=True) and friends", "for m in (nn.ReLU(inplace=True), nn.LeakyReLU(0.1, inplace=True), nn.Dropout(0.5, inplace=True), nn.SiLU(inplace=True), nn.ELU(inplace=True)):\n    assert m.eval()(img).shape == img.shape"),
        ("Dropout / Dropout2d / Identity", "for m in (nn.Dropout(0.5), nn.Dropout2d(0.5), nn.Identity()):\n    assert m(img).shape == img.shape"),
        ("GELU / SiLU / ELU / LeakyReLU / Softmax / LogSoftmax modules", "for m in (nn.GELU(), nn.SiLU(), nn.ELU(), nn.LeakyReLU(0.1), nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Tanh(), nn.Sigmoid()):\n    assert m(x).shape == x.shape"),
        ("F.pad in torch's order", "assert F.pad(img, (1, 2)).shape == (2, 3, 8, 11) and F.pad(img, (1, 1, 2, 2)).shape == (2, 3, 12, 10)"),
        ("F.interpolate / Upsample", "assert F.interpolate(img, scale_factor=2, mode='nearest').shape == (2, 3, 16, 16)\nassert nn.Upsample(size=(4, 4), mode='bilinear', align_corners=False)(img).shape == (2, 3, 4, 4)"),
        ("max_pool2d with ceil_mode / return_indices", "out, idx = F.max_pool2d(torch.randn(1, 1, 5, 5), 2, ceil_mode=True, return_indices=True)\nassert out.shape == (1, 1, 3, 3) and idx.shape == (1, 1, 3, 3)"),
        ("state_dict / load_state_dict / parameters()", "a, b = nn.Linear(4, 2), nn.Linear(4, 2)\nb.load_state_dict(a.state_dict())\nassert torch.equal(a(x), b(x)) and len(list(a.parameters())) == 2"),
        ("model.to(device) / train() / eval()", "m = nn.Linear(4, 2).to(torch.device('cpu'))\nm.eval()\nassert not m.training\nm.train()\nassert m.training"),
    ],
    "Losses": [
        ("nn.CrossEntropyLoss()(logits, labels)", "assert nn.CrossEntropyLoss()(x, labels).ndim == 0"),
        ("CrossEntropyLoss weight / ignore_index / label_smoothing", "loss = nn.CrossEntropyLoss(weight=torch.ones(4), ignore_index=3, label_smoothing=0.1)(x, labels)\nassert loss.ndim == 0"),
        ("NLLLoss with log_softmax", "assert nn.NLLLoss()(F.log_softmax(x, dim=1), labels).ndim == 0 and F.nll_loss(x.log_softmax(1), labels, reduction='sum').ndim == 0"),
        ("MSELoss / L1Loss", "assert nn.MSELoss()(x, torch.zeros_like(x)).ndim == 0 and nn.L1Loss(reduction='sum')(x, x).item() == 0"),
        ("BCELoss / BCEWithLogitsLoss", "t = torch.rand(3, 4)\nassert nn.BCELoss()(torch.sigmoid(x), t).ndim == 0 and nn.BCEWithLogitsLoss(pos_weight=torch.ones(4))(x, t).ndim == 0"),
    ],
    "Optimizers and schedules": [
        ("SGD / Adam / AdamW / Adadelta / RMSprop / Adagrad", "for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.Adadelta, optim.RMSprop, optim.Adagrad):\n    m = nn.Linear(4, 2)\n    o = cls(m.parameters(), lr=0.01)\n    o.zero_grad(); m(x).sum().backward(); o.step()"),
        ("Adam(amsgrad=True)", "m = nn.Linear(4, 2)\no = optim.Adam(m.parameters(), lr=0.01, amsgrad=True)\nm(x).sum().backward(); o.step()"),
        ("StepLR / MultiStepLR / ExponentialLR / LambdaLR / CosineAnnealingLR", "from torch.optim import lr_scheduler as S\nm = nn.Linear(4, 2)\nfor make in (lambda o: S.StepLR(o, 1), lambda o: S.MultiStepLR(o, [1]), lambda o: S.ExponentialLR(o, 0.9), lambda o: S.LambdaLR(o, lambda e: 0.5), lambda o: S.CosineAnnealingLR(o, 10)):\n    o = optim.SGD(m.parameters(), lr=0.1)\n    s = make(o); o.step(); s.step()\n    assert s.get_last_lr()[0] <= 0.1"),
        ("OneCycleLR / ReduceLROnPlateau", "from torch.optim import lr_scheduler as S\nm = nn.Linear(4, 2)\no = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)\ns = S.OneCycleLR(o, max_lr=0.1, total_steps=10)\no.step(); s.step()\no2 = optim.SGD(m.parameters(), lr=0.1)\nr = S.ReduceLROnPlateau(o2, patience=0)\nr.step(1.0); r.step(2.0); r.step(3.0)\nassert o2.param_groups[0]['lr'] < 0.1"),
        ("clip_grad_norm_ / clip_grad_value_ / parameters_to_vector", "m = nn.Linear(4, 2)\nm(x).sum().backward()\nnn.utils.clip_grad_norm_(m.parameters(), 1.0)\nnn.utils.clip_grad_value_(m.parameters(), 0.1)\nv = nn.utils.parameters_to_vector(m.parameters())\nassert v.shape == (10,)\nnn.utils.vector_to_parameters(v * 0, m.parameters())\nassert m.weight.abs().sum().item() == 0"),
        ("optimizer.param_groups[0]['lr']", "o = optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)\no.param_groups[0]['lr'] = 0.05\nassert o.param_groups[0]['lr'] == 0.05"),
    ],
    "Data": [
        ("TensorDataset + DataLoader(shuffle, num_workers, pin_memory)", "from torch.utils.data import TensorDataset, DataLoader\nds = TensorDataset(torch.randn(10, 3), torch.arange(10))\nbatches = list(DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, pin_memory=True))\nassert len(batches) == 3 and batches[0][0].shape == (4, 3)"),
        ("a custom Dataset of dicts, with collate_fn", "from torch.utils.data import Dataset, DataLoader\nclass D(Dataset):\n    def __len__(self): return 5\n    def __getitem__(self, i): return {'x': torch.ones(2) * i, 'y': i}\nb = next(iter(DataLoader(D(), batch_size=5)))\nassert b['x'].shape == (5, 2) and b['y'].tolist() == [0, 1, 2, 3, 4]\nc = next(iter(DataLoader(D(), batch_size=2, collate_fn=lambda items: len(items))))\nassert c == 2"),
        ("torch.save / torch.load of a state_dict (.pt, .pth)", "import tempfile, os\nm = nn.Linear(4, 2)\npath = os.path.join(tempfile.mkdtemp(), 'w.pth')\ntorch.save(m.state_dict(), path)\nm2 = nn.Linear(4, 2)\nm2.load_state_dict(torch.load(path, weights_only=True))\nassert torch.equal(m(x), m2(x))"),
    ],
}

IDIOMS["Function transforms (torch.func)"] = [
    ("vmap over a batch, in_dims and out_dims", "f = lambda v: (v * v).sum()\nassert torch.allclose(torch.func.vmap(f)(x), (x * x).sum(1))\nassert torch.func.vmap(lambda v: v * 2, in_dims=1, out_dims=1)(x).shape == (3, 4)"),
    ("per-sample gradients: vmap(grad(...)) with functional_call", "model = nn.Linear(4, 2)\nparams = {k: v.detach() for k, v in model.named_parameters()}\ndef loss(p, xi, yi):\n    return F.cross_entropy(torch.func.functional_call(model, p, (xi[None],)), yi[None])\ng = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, labels % 2)\nassert g['weight'].shape == (3, 2, 4) and g['bias'].shape == (3, 2)"),
    ("grad, jacrev, jacfwd, hessian", "v = x[0].double()\nassert torch.allclose(torch.func.grad(lambda t: (t ** 3).sum())(v), 3 * v ** 2)\nassert torch.func.jacrev(lambda t: t.sin())(v).shape == (4, 4) and torch.func.jacfwd(lambda t: t.sin())(v).shape == (4, 4)\nassert torch.allclose(torch.func.hessian(lambda t: (t ** 3).sum())(v), torch.diag(6 * v))"),
    ("jvp and vjp", "v = x[0].double()\nout, tangent = torch.func.jvp(lambda t: t.exp(), (v,), (torch.ones_like(v),))\nassert torch.allclose(tangent, v.exp())\nout, pullback = torch.func.vjp(lambda t: t.exp(), v)\nassert torch.allclose(pullback(torch.ones_like(v))[0], v.exp())"),
]

# Idioms that need torchvision on the PyTorch side (not installed with the bench extra, so they are
# checked against torchvision's documented results only).
VISION_IDIOMS = {
    "torchvision": [
        ("transforms.Compose / ToTensor / Normalize", "from torchvision import transforms\nt = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])\nout = t(np.full((4, 5, 1), 255, dtype=np.uint8))\nassert out.shape == (1, 4, 5) and abs(out.max().item() - 1.0) < 1e-6"),
        ("RandomCrop / RandomHorizontalFlip / Resize / CenterCrop", "from torchvision import transforms\nimage = torch.rand(3, 8, 8)\nassert transforms.RandomCrop(6, padding=1)(image).shape == (3, 6, 6) and transforms.RandomHorizontalFlip()(image).shape == (3, 8, 8)\nassert transforms.Resize((4, 4))(image).shape == (3, 4, 4) and transforms.CenterCrop(4)(image).shape == (3, 4, 4)"),
        ("utils.make_grid", "import torchvision\nassert torchvision.utils.make_grid(torch.rand(4, 3, 8, 8)).shape == (3, 12, 42)"),
    ],
}

# Idioms known not to work here, with the reason shown in the generated page.
KNOWN_GAPS = {}

# The everyday names added for torch programs: a line or two per category.
IDIOMS["Math"] += [
    ("log1p / expm1 / square / rsqrt / reciprocal / erf", "y = x.abs() + 1\nassert torch.allclose(torch.log1p(x.abs()), (x.abs() + 1).log()) and torch.allclose(torch.expm1(x), x.exp() - 1)\nassert torch.allclose(x.square(), x * x) and torch.allclose(y.rsqrt(), 1 / y.sqrt()) and torch.allclose(y.reciprocal(), 1 / y)\nassert abs(torch.erf(torch.tensor(0.5)).item() - 0.5204999) < 1e-6"),
    ("isinf / isclose / nan_to_num", "t = torch.tensor([1.0, float('inf'), float('nan')])\nassert t.isinf().tolist() == [False, True, False] and torch.isclose(t, t).tolist() == [True, True, False]\nassert torch.nan_to_num(t, nan=0.0, posinf=9.0).tolist() == [1.0, 9.0, 0.0]"),
    ("outer / dot / inner / trace / lerp", "a = torch.arange(3.0)\nassert torch.outer(a, a).shape == (3, 3) and torch.dot(a, a).item() == 5 and torch.inner(x, x).shape == (3, 3)\nassert torch.eye(3).trace().item() == 3 and torch.lerp(a, a + 2, 0.5).tolist() == [1.0, 2.0, 3.0]"),
    ("cumprod / diff / count_nonzero / clamp_min", "a = torch.tensor([1.0, 2.0, 3.0])\nassert a.cumprod(0).tolist() == [1.0, 2.0, 6.0] and torch.diff(a).tolist() == [1.0, 1.0]\nassert torch.count_nonzero(torch.eye(3)).item() == 3 and x.clamp_min(0).min().item() >= 0"),
    ("logical_and / logical_or / logical_xor", "assert torch.logical_and(x > 0, x < 1).dtype == torch.bool and torch.logical_xor(x > 0, x <= 0).all()"),
]
IDIOMS["Indexing, views and joining"] += [
    ("tril / triu(diagonal=)", "m = torch.ones(3, 3)\nassert torch.tril(m).sum().item() == 6 and m.triu(diagonal=1).sum().item() == 3"),
    ("repeat_interleave / tile / broadcast_to", "assert torch.tensor([1, 2]).repeat_interleave(2).tolist() == [1, 1, 2, 2]\nassert torch.tile(torch.tensor([1, 2]), (2,)).tolist() == [1, 2, 1, 2] and torch.broadcast_to(torch.ones(4), (3, 4)).shape == (3, 4)"),
    ("meshgrid(indexing='ij' / 'xy')", "i, j = torch.meshgrid(torch.arange(2), torch.arange(3), indexing='ij')\nassert i.shape == (2, 3)\nxs, ys = torch.meshgrid(torch.arange(2), torch.arange(3), indexing='xy')\nassert xs.shape == (3, 2)"),
]
IDIOMS["Layers"] += [
    ("Softplus / Hardtanh / LogSigmoid / Softmin / SELU / CELU / Mish / Hardswish / GLU ...", "for m in (nn.Softplus(beta=2), nn.Hardtanh(), nn.LogSigmoid(), nn.Softmin(dim=1), nn.Softsign(), nn.Tanhshrink(), nn.Threshold(0.1, 0.0), nn.SELU(), nn.CELU(), nn.Mish(), nn.Hardswish(), nn.ReLU6()):\n    assert m(x).shape == x.shape\nassert nn.GLU()(x).shape == (3, 2) and F.softplus(x, beta=1, threshold=20).shape == x.shape"),
    ("nn.PReLU learns its slope", "m = nn.PReLU()\nm(x).sum().backward()\nassert m.weight.grad.shape == (1,) and nn.PReLU(3)(img).shape == img.shape"),
    ("F.normalize / cosine_similarity / pairwise_distance", "assert torch.allclose(F.normalize(x, dim=1).norm(dim=1), torch.ones(3))\nassert F.cosine_similarity(x, x).shape == (3,) and nn.PairwiseDistance()(x, x).shape == (3,)"),
    ("Unflatten / ZeroPad2d", "assert nn.Unflatten(1, (2, 2))(x).shape == (3, 2, 2) and nn.ZeroPad2d((1, 1, 2, 0))(img).shape == (2, 3, 10, 10)"),
    ("MaxPool1d / AvgPool1d / AdaptiveAvgPool1d / F.max_pool1d", "s = torch.randn(2, 3, 10)\nassert nn.MaxPool1d(2)(s).shape == (2, 3, 5) and nn.AvgPool1d(3, stride=1)(s).shape == (2, 3, 8)\nassert nn.AdaptiveAvgPool1d(1)(s).shape == (2, 3, 1) and F.max_pool1d(s, 2).shape == (2, 3, 5)"),
]
IDIOMS["Losses"] += [
    ("SmoothL1Loss(beta=) / HuberLoss(delta=)", "assert nn.SmoothL1Loss(beta=0.5)(x, torch.zeros_like(x)).ndim == 0 and nn.HuberLoss(delta=2.0)(x, x).item() == 0"),
    ("KLDivLoss(reduction='batchmean') with log_softmax", "p = F.log_softmax(x, dim=1)\nassert abs(nn.KLDivLoss(reduction='batchmean')(p, p.exp()).item()) < 1e-6 and F.kl_div(p, p, reduction='sum', log_target=True).item() == 0"),
    ("MarginRankingLoss / TripletMarginLoss", "assert nn.MarginRankingLoss(margin=0.1)(x[0], x[1], torch.ones(4)).ndim == 0\nassert nn.TripletMarginLoss(margin=1.0)(x, x, -x).ndim == 0"),
]
IDIOMS["Optimizers and schedules"] += [
    ("NAdam / RAdam / Adamax", "for cls in (optim.NAdam, optim.RAdam, optim.Adamax):\n    m = nn.Linear(4, 2)\n    o = cls(m.parameters(), lr=0.01)\n    m(x).sum().backward(); o.step(); o.zero_grad()"),
    ("warm-up then cosine: SequentialLR(LinearLR, CosineAnnealingLR)", "from torch.optim import lr_scheduler as S\no = optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)\ns = S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=2), S.CosineAnnealingLR(o, T_max=3)], milestones=[2])\nfor _ in range(4):\n    o.step(); s.step()\nassert 0 < s.get_last_lr()[0] < 0.1"),
    ("ConstantLR / PolynomialLR / CosineAnnealingWarmRestarts", "from torch.optim import lr_scheduler as S\nfor make in (lambda o: S.ConstantLR(o, factor=0.5), lambda o: S.PolynomialLR(o, total_iters=4), lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2)):\n    o = optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)\n    s = make(o)\n    o.step(); s.step()\n    assert s.get_last_lr()[0] <= 0.1"),
]
