"""Data parallelism without a framework: rank, world size and the three collectives training needs.

A single process is rank 0 of 1 and every collective is a no-op. Under ``torchrun`` / ``accelerate launch``
(the environment names ``WORLD_SIZE``) the process group is joined with NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import dataclasses
import os

import torch


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Rank and world size; a single process is rank 0 of 1 (every collective is then a no-op)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> "DistContext":
        """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the environment."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def main(self) -> bool:
        return self.rank == 0

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's ``x`` concatenated in rank order; only this rank's part carries gradients."""
        if self.world_size == 1:
            return x
        import torch.distributed as dist
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.detach().contiguous())
        parts[self.rank] = x
        return torch.cat(parts)

    def sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist
            dist.barrier()
