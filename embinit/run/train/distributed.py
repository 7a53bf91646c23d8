"""Process-group setup for `torchrun`; the single-process path is the degenerate case.

Everything else asks `Dist` who it is: rank 0 alone writes caches, checkpoints and
the run record; every rank reads its own shard of each global batch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum floats across ranks (float64 on CPU so totals are exact enough for bpb)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()


def _export_submitit_env() -> None:
    """Under Hydra's Submitit launcher with several tasks per job, set torchrun's variables.

    Each task of the job is one rank; submitit knows the rank, the task count and the
    master node. A job of one task (the default) stays single-process.
    """
    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def setup(device_type: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else no-op.

    Ranks other than 0 log warnings and errors only, so a run's log has one copy of
    each progress line.
    """
    _export_submitit_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    if rank != 0:
        logging.getLogger("embinit").setLevel(logging.WARNING)
    return Dist(rank=rank, world_size=world, local_rank=local)


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
