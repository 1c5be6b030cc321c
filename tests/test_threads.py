"""Engine modes are per thread, and per asyncio task (``tinygrad_cnn/modes.py``).

Grad mode and anomaly mode live in ``contextvars``: what one thread does (a ``no_grad`` evaluation
loop, an optimizer step, the backward walk, ``detect_anomaly``) is invisible to every other thread,
a new thread starts with the defaults (grad on, anomaly off), and each asyncio task keeps its own.
These tests use real threads. Where the outcome depends on the order in which two threads act,
barriers fix that order, so each test checks the interleaving that would break a process-wide flag
(every one of them fails when the modes are one flag for the whole process).
"""
import asyncio
import queue
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import AnomalyError, Function, Tensor, nn
from tinygrad_cnn.autograd import is_anomaly_enabled
from tinygrad_cnn.optim import SGD

TIMEOUT = 20  # seconds; a barrier that waits longer means a thread died or deadlocked


def run_in_threads(*functions, barrier: threading.Barrier = None):
    """Run each function in its own thread, wait for all, and raise the first error any of them
    raised. An error breaks ``barrier``, so that the other threads stop waiting for the one that
    failed (they fail with ``BrokenBarrierError``, reported after the first error)."""
    errors = []

    def guarded(fn):
        try:
            fn()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]


# ---- training in threads ---------------------------------------------------------------------------------


def small_net(seed: int):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 4))


def small_dataset(seed: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 4, 16)


def train(model, images, labels, steps: int = 30, batch: int = 4) -> None:
    """SGD with momentum over fixed batches; every step must have given every parameter a gradient."""
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(steps):
        start = step * batch % len(images)
        x, y = Tensor(images[start:start + batch]), labels[start:start + batch]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        assert loss.requires_grad, f"step {step}: the loss was computed without recording a graph"
        loss.backward()
        missing = [name for name, p in model.named_parameters() if p.grad is None]
        assert not missing, f"step {step}: no gradient for {missing}"
        optimizer.step()


def test_two_models_trained_in_threads_beside_a_no_grad_evaluator_match_training_them_in_turn():
    sequential = [small_net(1), small_net(2)]
    threaded = [small_net(1), small_net(2)]
    evaluated = small_net(3)
    data = [small_dataset(1), small_dataset(2)]
    for model, (images, labels) in zip(sequential, data):
        train(model, images, labels)

    start = threading.Barrier(3, timeout=TIMEOUT)
    trainers_done = threading.Event()

    def trainer(model, images, labels):
        def run():
            start.wait()
            train(model, images, labels)
        return run

    def evaluator():
        images = small_dataset(3)[0]
        before = evaluated.state_dict()
        with tg.no_grad():
            expected = evaluated(Tensor(images)).data.copy()
        start.wait()
        evaluations = 0
        while not trainers_done.is_set() or evaluations < 5:
            with tg.no_grad():
                out = evaluated(Tensor(images))
            assert out.grad_fn is None and not out.requires_grad
            np.testing.assert_array_equal(out.data, expected)  # the model never changes
            evaluations += 1
        assert all(p.grad is None for p in evaluated.parameters())
        for name, value in evaluated.state_dict().items():
            np.testing.assert_array_equal(value, before[name])

    def trainers():
        try:
            run_in_threads(*(trainer(m, *d) for m, d in zip(threaded, data)), barrier=start)
        finally:
            trainers_done.set()

    run_in_threads(trainers, evaluator, barrier=start)
    for done_in_turn, done_in_threads in zip(sequential, threaded):
        expected, got = done_in_turn.state_dict(), done_in_threads.state_dict()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert tg.is_grad_enabled()


# ---- grad mode in one thread is invisible to the others ------------------------------------------------


def test_overlapping_no_grad_blocks_in_two_threads_never_leave_grad_mode_off():
    """Thread a enters no_grad, then b enters, then a leaves, then b leaves: with one flag for the
    process, b's exit would restore the False that a had set, and grad mode would stay off."""
    phase = threading.Barrier(2, timeout=TIMEOUT)
    x = Tensor([1.0], requires_grad=True)

    def a():
        with tg.no_grad():
            phase.wait()  # 1: a is inside
            phase.wait()  # 2: b is inside
        phase.wait()  # 3: a has left
        phase.wait()  # 4: b has left
        assert tg.is_grad_enabled() and (x * 2).requires_grad

    def b():
        phase.wait()  # 1
        assert tg.is_grad_enabled(), "a's no_grad turned grad mode off in b"
        with tg.no_grad():
            phase.wait()  # 2
            phase.wait()  # 3
            assert not tg.is_grad_enabled(), "a leaving its no_grad turned grad mode on in b"
        phase.wait()  # 4
        assert tg.is_grad_enabled() and (x * 2).requires_grad

    run_in_threads(a, b, barrier=phase)
    assert tg.is_grad_enabled()


def test_set_grad_enabled_called_in_a_thread_applies_to_that_thread_at_once():
    inside = threading.Barrier(2, timeout=TIMEOUT)
    x = Tensor([1.0], requires_grad=True)

    def switches_off():
        tg.set_grad_enabled(False)  # a plain call, as in torch: no with-block
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
        inside.wait()
        inside.wait()

    def records():
        inside.wait()
        assert tg.is_grad_enabled() and (x * 2).requires_grad
        inside.wait()

    run_in_threads(switches_off, records, barrier=inside)
    assert tg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled_and_anomaly_off():
    seen = []
    with tg.no_grad(), tg.detect_anomaly():
        run_in_threads(lambda: seen.append((tg.is_grad_enabled(), is_anomaly_enabled())))
        assert not tg.is_grad_enabled() and is_anomaly_enabled()
    assert seen == [(True, False)]


def test_backward_turns_grad_mode_off_only_in_its_own_thread():
    """The walk runs with grad mode set to ``create_graph`` (off here); a thread that records ops
    meanwhile must still record them."""
    during_backward = threading.Barrier(2, timeout=TIMEOUT)
    x = Tensor([1.0, 2.0], requires_grad=True)
    modes_in_the_hook = []

    def runs_backward():
        h = x * 3
        h.register_hook(lambda g: (modes_in_the_hook.append(tg.is_grad_enabled()), during_backward.wait(),
                                   during_backward.wait())[0])
        (h * h).sum().backward()

    def records():
        during_backward.wait()  # the other thread is inside its backward walk
        assert tg.is_grad_enabled(), "another thread's backward turned grad mode off here"
        assert (x * 2).requires_grad
        during_backward.wait()

    run_in_threads(runs_backward, records, barrier=during_backward)
    assert modes_in_the_hook == [False]
    np.testing.assert_array_equal(x.grad.data, 18 * x.data)


# ---- anomaly mode ----------------------------------------------------------------------------------------


def test_anomaly_mode_in_one_thread_is_invisible_to_another():
    inside = threading.Barrier(2, timeout=TIMEOUT)

    def hunts():
        with tg.detect_anomaly():
            inside.wait()
            inside.wait()

    def computes():
        inside.wait()
        assert not is_anomaly_enabled()
        with np.errstate(invalid="ignore"):
            assert np.isnan(Tensor([-1.0]).log().data).all()  # no AnomalyError: not in this thread
        inside.wait()

    run_in_threads(hunts, computes, barrier=inside)


class WaitingDouble(Function):
    """y = 2x, whose backward waits at ``barrier`` twice: another thread acts while it runs."""

    barrier: threading.Barrier

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        WaitingDouble.barrier.wait()
        WaitingDouble.barrier.wait()
        return grad * 2


def test_a_nan_made_in_one_thread_is_not_blamed_on_a_backward_running_in_another():
    """Under anomaly mode, an op run while a node's backward runs is reported as part of that
    backward; which backward is running is a fact about one thread, not the process."""
    WaitingDouble.barrier = threading.Barrier(2, timeout=TIMEOUT)

    def runs_backward():
        with tg.detect_anomaly():
            WaitingDouble.apply(Tensor([1.0], requires_grad=True)).sum().backward()

    def makes_nan():
        WaitingDouble.barrier.wait()  # the other thread is inside WaitingDouble.backward
        with tg.detect_anomaly(), np.errstate(invalid="ignore"):  # errstate is per thread too
            with pytest.raises(AnomalyError, match=r"^Log produced NaN in its forward\."):
                Tensor([-1.0]).log()
        WaitingDouble.barrier.wait()

    run_in_threads(runs_backward, makes_nan, barrier=WaitingDouble.barrier)


# ---- asyncio: one mode per task ------------------------------------------------------------------------


def test_two_asyncio_tasks_keep_their_own_grad_mode_across_awaits():
    x = Tensor([1.0], requires_grad=True)
    recorded = {"evaluate": [], "train": []}

    async def evaluate():
        with tg.no_grad():
            for _ in range(5):
                recorded["evaluate"].append((x * 2).requires_grad)
                await asyncio.sleep(0)  # the train task runs here, inside this task's no_grad

    async def train_task():
        for _ in range(5):
            recorded["train"].append((x * 2).requires_grad)
            await asyncio.sleep(0)

    async def both():
        await asyncio.gather(evaluate(), train_task())

    asyncio.run(both())
    assert recorded == {"evaluate": [False] * 5, "train": [True] * 5}
    assert tg.is_grad_enabled()


def test_an_asyncio_task_inherits_the_mode_it_was_created_in_and_does_not_leak_its_changes():
    async def switches_off():
        tg.set_grad_enabled(False)
        return tg.is_grad_enabled()

    async def reads():
        return tg.is_grad_enabled()

    async def main():
        assert await asyncio.create_task(switches_off()) is False
        after_task = tg.is_grad_enabled()
        with tg.no_grad():
            inherited = await asyncio.create_task(reads())
        return after_task, inherited

    assert asyncio.run(main()) == (True, False)


# ---- any interleaving of mode blocks in threads --------------------------------------------------------

try:
    import torch  # where installed, torch's grad mode (thread-local) runs beside ours as a reference
except ImportError:
    torch = None

# command -> the blocks it enters: ours, and torch's where it has the same (grad mode only: torch's
# anomaly mode is one flag for the whole process, so it is no reference for ours)
MODE_BLOCKS = {
    "no_grad": lambda: [tg.no_grad()] + ([torch.no_grad()] if torch else []),
    "enable_grad": lambda: [tg.enable_grad()] + ([torch.enable_grad()] if torch else []),
    "set_grad_enabled(False)": lambda: [tg.set_grad_enabled(False)] + ([torch.set_grad_enabled(False)] if torch else []),
    "set_grad_enabled(True)": lambda: [tg.set_grad_enabled(True)] + ([torch.set_grad_enabled(True)] if torch else []),
    "detect_anomaly": lambda: [tg.detect_anomaly()],
}


class ModeWorker:
    """A real thread that enters and leaves mode blocks when told, one command at a time, and
    answers each with its modes afterwards: (grad enabled, anomaly enabled, torch's grad enabled
    or None without torch)."""

    def __init__(self):
        self.commands, self.answers = queue.Queue(), queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        open_blocks = []  # one list of blocks (ours, torch's) per command that entered some
        while True:
            command = self.commands.get()
            try:
                if command is None:
                    return
                if command == "exit":
                    for block in reversed(open_blocks.pop()):
                        block.__exit__(None, None, None)
                elif command.startswith("call "):
                    tg.set_grad_enabled(command == "call True")
                    if torch:
                        torch.set_grad_enabled(command == "call True")
                else:
                    blocks = MODE_BLOCKS[command]()
                    for block in blocks:
                        block.__enter__()
                    open_blocks.append(blocks)
                torch_grad = torch.is_grad_enabled() if torch else None
                self.answers.put((tg.is_grad_enabled(), is_anomaly_enabled(), torch_grad))
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                self.answers.put(error)

    def do(self, command):
        self.commands.put(command)
        answer = self.answers.get(timeout=TIMEOUT)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def stop(self):
        self.commands.put(None)
        self.thread.join(TIMEOUT)


def model_step(command, open_blocks, modes):
    """What one thread's modes should be after ``command``, as torch's thread-local modes behave: a
    block sets its mode on entry and, on exit, restores that mode (grad mode for the grad blocks,
    anomaly mode for detect_anomaly) to the value it had on entry; a plain ``set_grad_enabled`` call
    sets grad mode until something else changes it."""
    grad, anomaly = modes
    if command == "exit":
        kind, (grad_on_entry, anomaly_on_entry) = open_blocks.pop()
        return (grad, anomaly_on_entry) if kind == "detect_anomaly" else (grad_on_entry, anomaly)
    if command.startswith("call "):
        return (command == "call True", anomaly)
    open_blocks.append((command, modes))
    if command == "detect_anomaly":
        return (grad, True)
    return (command in ("enable_grad", "set_grad_enabled(True)"), anomaly)


@given(st.data())
def test_any_interleaving_of_mode_blocks_in_three_threads_gives_each_thread_its_own_modes(data):
    workers = [ModeWorker() for _ in range(3)]
    blocks = [[] for _ in workers]  # per thread: (command, modes on entry) of each open block
    modes = [(True, False) for _ in workers]

    def step(i, command):
        modes[i] = model_step(command, blocks[i], modes[i])
        grad, anomaly, torch_grad = workers[i].do(command)
        assert (grad, anomaly) == modes[i], f"thread {i} after {command}"
        assert torch_grad in (None, grad), f"thread {i} after {command}: torch's grad mode is {torch_grad}"

    try:
        for _ in range(data.draw(st.integers(1, 25), label="steps")):
            i = data.draw(st.integers(0, len(workers) - 1), label="thread")
            choices = list(MODE_BLOCKS) + ["call True", "call False"] + (["exit"] * 3 if blocks[i] else [])
            step(i, data.draw(st.sampled_from(choices), label="command"))
        for i in range(len(workers)):  # leave every block: anomaly mode is off again
            while blocks[i]:
                step(i, "exit")
            assert modes[i][1] is False
    finally:
        for worker in workers:
            worker.stop()
    assert tg.is_grad_enabled() and not is_anomaly_enabled()
