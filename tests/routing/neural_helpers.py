"""What the neural routing tests share: one torch thread, and tiny policies with working layers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from opsrl.routing.policy import BQPolicy, PolicyConfig  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny models run many times faster so on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(problem: str, seed: int = 0) -> BQPolicy:
    """A 2-layer width-32 policy with non-zero ReZero weights (so that the layers do something)."""
    torch.manual_seed(seed)
    policy = BQPolicy(PolicyConfig.preset(problem, "tiny"))
    for layer in policy.layers:
        layer.alpha.data.fill_(0.5)
    return policy.eval()
