"""Data-parallel training helpers shared by the trainers: one process per device, torch DistributedDataParallel.

A trainer is written once for any number of processes: it calls ``context()`` for its rank, world
size and device, wraps its module with ``wrap(module, ctx)``, takes its shard of each global batch
with ``shard(rows, ctx)``, sums scalars over ranks with ``all_sum`` and lets only ``ctx.is_main``
write files. Processes are started either by ``opsrl train --nproc N`` (``launch`` spawns N local
processes) or by ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT);
the process group is gloo on the CPU and nccl on CUDA. torch is imported inside the functions.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among ``world`` processes, its local rank and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def env_world() -> int:
    """WORLD_SIZE from the environment (torchrun or ``launch`` set it); 1 when not set."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise UsageError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r}: expected a positive integer") from None


def context(device: str = "cpu") -> Context:
    """This process's rank, world size and device; initialises the process group once when WORLD_SIZE > 1.

    ``device`` is the one chosen for a single process ("cpu", "cuda", "cuda:K"); with several
    processes on CUDA each takes ``cuda:LOCAL_RANK``.
    """
    world = env_world()
    if world == 1:
        return Context(device=device)
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        if local >= torch.cuda.device_count():
            raise OpsrlError(f"process {rank} has local rank {local} but this machine has "
                             f"{torch.cuda.device_count()} CUDA devices; start at most that many per node")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return Context(rank=rank, world=world, local_rank=local, device=device)


def wrap(module: Any, ctx: Context) -> Any:
    """``module`` in DistributedDataParallel when there are several processes, else itself.

    Keep a reference to the plain module: its ``state_dict`` has no ``module.`` prefixes, so
    checkpoints saved from it load anywhere.
    """
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(ctx.device.split(":")[1])] if ctx.device.startswith("cuda:") else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: Any) -> Any:
    """The plain module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def shard(rows: Any, ctx: Context) -> Any:
    """This rank's contiguous share of a global batch's rows (sizes differ by at most one)."""
    n = len(rows)
    lo, hi = n * ctx.rank // ctx.world, n * (ctx.rank + 1) // ctx.world
    return rows[lo:hi]


def all_sum(value: float, ctx: Context) -> float:
    """``value`` summed over all ranks (itself with one process)."""
    if not ctx.distributed:
        return float(value)
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64,
                     device=ctx.device if ctx.device.startswith("cuda") else "cpu")
    dist.all_reduce(t)
    return float(t.item())


def barrier(ctx: Context) -> None:
    """Wait for every rank (no-op with one process)."""
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def close(ctx: Context) -> None:
    """Tear the process group down (when this process set it up through ``context``)."""
    if ctx.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, fn: Callable[..., Any], kwargs: dict[str, Any], nproc: int, port: int,
            result: str, threads: int) -> None:
    """One spawned process: the torchrun environment for ``local_rank``, then ``fn``; rank 0 pickles the answer."""
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(nproc),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch

    torch.set_num_threads(threads)
    ctx = Context(rank=local_rank, world=nproc, local_rank=local_rank)
    try:
        value = fn(**kwargs)
        if torch.distributed.is_initialized():  # no rank tears the group down while another still talks (gloo aborts)
            barrier(ctx)
    finally:
        close(ctx)
    if local_rank == 0:
        Path(result).write_bytes(pickle.dumps(value))


def launch(fn: Callable[..., Any], nproc: int, **kwargs: Any) -> Any:
    """``fn(**kwargs)`` in ``nproc`` processes on this machine (rank 0's answer), or here when nproc is 1
    or this process already belongs to a group started by torchrun."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UsageError(f"--nproc must be a positive integer, got {nproc}")
    if nproc == 1 or env_world() > 1:
        return fn(**kwargs)
    import torch.multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // nproc)
    with tempfile.TemporaryDirectory(prefix="opsrl-ddp-") as tmp:
        result = os.path.join(tmp, "rank0.pkl")
        try:
            mp.start_processes(_worker, args=(fn, kwargs, nproc, _free_port(), result, threads), nprocs=nproc,
                               join=True, start_method="spawn")
        except mp.ProcessRaisedException as exc:
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            last = lines[-1] if lines else str(exc)
            if last.startswith("opsrl.core.errors."):  # the trainer's own one-line error, as a single process gives it
                name, _, message = last.partition(": ")
                raise (UsageError if name == "opsrl.core.errors.UsageError" else OpsrlError)(message) from None
            raise OpsrlError(f"distributed training failed: {last}") from None
        return pickle.loads(Path(result).read_bytes())
