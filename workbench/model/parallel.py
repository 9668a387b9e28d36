"""Several processes, one job: the rank and world size a launcher gave this process.

``torchrun --nproc-per-node N`` and ``accelerate launch --num_processes N`` (on
one node or, through an accelerate config, on several) set ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`launched` reads them and joins the process
group through accelerate's ``PartialState`` (gloo on CPU: a bare
``PartialState()`` on a CPU machine reports one process on every rank, so
``cpu=True`` is passed there; NCCL on GPUs). Without a launcher it returns one
process and imports nothing:

>>> procs = launched()
>>> procs.world_size, procs.rank, procs.is_main, procs.owned(3)
(1, 0, True, [0, 1, 2])

Work is dealt in whole shards, shard ``k`` to rank ``k % world_size``, so each
shard holds the batches a single process would form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import MissingExtraError, WorkbenchError

__all__ = ["Processes", "launched", "planned", "process_device"]


@dataclass(frozen=True)
class Processes:
    """This process's place in a launch: rank, world size and local rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owned(self, n_shards: int) -> list[int]:
        """The shards this process writes (``k % world_size == rank``)."""
        return list(range(self.rank, n_shards, self.world_size))

    def check_shards(self, n_items: int, shard_size: int) -> None:
        """Refuse a launch with more processes than shards (some would have nothing to do)."""
        n_shards = -(-n_items // shard_size) if shard_size >= 1 else n_items
        if 1 < self.world_size > n_shards:
            raise WorkbenchError(
                f"{self.world_size} processes for {n_shards} shard(s) of {shard_size} items "
                f"({n_items} items): launch at most {n_shards} processes or lower --shard-size"
            )

    def check_device_map(self, device_map: object) -> None:
        """Refuse sharding one model over GPUs while several processes each load one."""
        if self.world_size > 1 and device_map is not None:
            raise WorkbenchError(
                f"--device-map {device_map!r} under a launch of {self.world_size} processes: each "
                "process already takes one GPU (cuda:LOCAL_RANK); drop --device-map, or launch "
                "one process to shard one model over several GPUs"
            )

    def barrier(self) -> None:
        """Wait until every process gets here (nothing to wait for alone)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def planned() -> Processes:
    """What the launcher's environment says (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
    without joining any process group: enough to check a launch before loading."""
    env = {k: int(os.environ.get(k, "") or d) for k, d in (("RANK", 0), ("WORLD_SIZE", 1))}
    local = int(os.environ.get("LOCAL_RANK", "") or env["RANK"])
    return Processes(env["RANK"], max(env["WORLD_SIZE"], 1), local)


def launched(device: str = "cpu") -> Processes:
    """The launcher's processes (one without a launcher); joins the process group once.

    Args:
        device: the device the model will run on; ``cpu`` joins a gloo group,
            a CUDA device an NCCL one.
    """
    world = planned().world_size
    if world <= 1:
        return Processes()
    try:
        from accelerate import PartialState
    except ImportError:
        raise MissingExtraError("accelerate", "parallel") from None
    import torch

    gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    state: Any = PartialState(cpu=not gpu)
    if state.num_processes != world:
        raise WorkbenchError(
            f"the launcher set WORLD_SIZE={world} but the process group has "
            f"{state.num_processes} process(es): launch with torchrun or accelerate launch"
        )
    return Processes(state.process_index, state.num_processes, state.local_process_index)


def process_device(device: str, procs: Processes) -> str:
    """``cuda`` (or ``auto`` on a GPU machine) as this process's GPU, ``cuda:LOCAL_RANK``."""
    if procs.world_size == 1 or device not in ("cuda", "auto"):
        return device
    import torch

    if not torch.cuda.is_available():
        return "cpu" if device == "auto" else device
    return f"cuda:{procs.local_rank % torch.cuda.device_count()}"
