"""Which ranks must take the same decisions: the process groups of a model split across ``torch.distributed``.

A split model is found by what the engines that split it leave behind (read from their code):

- xDiT (``xfuser``) and raylight (which builds its groups with xDiT's ``initialize_model_parallel``): the
  sequence-parallel (Ulysses/ring), CFG-parallel and pipeline groups of ``xfuser.core.distributed``. Ranks of
  one data-parallel replica run one sampling run together; replicas run their own. So: the world group when
  there is one replica, else each of those groups larger than one, in turn.
- FSDP (raylight's weight sharding, FSDP1 or FSDP2): a module of the diffusion model is FSDP-wrapped, its
  weights are gathered inside every block on every rank: the whole world group.
- Any other engine can say so itself: ``transformer_options[SPLIT_KEY] = True`` on the model (the world group).

Nothing else is split: ``torch.distributed`` initialised for something else, or ComfyUI's own multi-GPU
threads (one process), give the single-rank ``Consensus`` and no collective is ever called. ``xfuser`` is never
imported here, only read when its engine has imported it.
"""

from __future__ import annotations

import sys

import torch

from ..taylor_core.consensus import Consensus, GroupConsensus
from .logs import LOG_PREFIX, logger

SPLIT_KEY = "taylor_forecast_split"


def _xfuser_groups() -> list | None:
    """The groups whose ranks share one sampling run under xDiT, None when xDiT splits nothing here."""
    xdist = sys.modules.get("xfuser.core.distributed")
    if xdist is None or not xdist.model_parallel_is_initialized():
        return None
    if max(xdist.get_sequence_parallel_world_size(), xdist.get_classifier_free_guidance_world_size(),
           xdist.get_pipeline_parallel_world_size()) <= 1:
        return None  # data parallel only: every rank runs its own sampling run
    if xdist.get_data_parallel_world_size() <= 1:
        return [_process_group(xdist.get_world_group())]
    split = ((xdist.get_sp_group(), xdist.get_sequence_parallel_world_size()),
             (xdist.get_cfg_group(), xdist.get_classifier_free_guidance_world_size()),
             (xdist.get_pp_group(), xdist.get_pipeline_parallel_world_size()))
    return [_process_group(coordinator) for coordinator, size in split if size > 1]


def _process_group(coordinator):
    """An xDiT group coordinator's gloo (CPU) process group, else its device group."""
    return getattr(coordinator, "cpu_group", None) or coordinator.device_group


def _fsdp_wrapped(diffusion_model: torch.nn.Module) -> bool:
    import torch.distributed.fsdp as fsdp

    kinds = tuple(kind for kind in (getattr(fsdp, "FullyShardedDataParallel", None),
                                    getattr(fsdp, "FSDPModule", None)) if kind is not None)
    return bool(kinds) and any(isinstance(module, kinds) for module in diffusion_model.modules())


def _world_device() -> torch.device:
    """Where a tensor for the default group must live (NCCL: the current CUDA device)."""
    backend = str(torch.distributed.get_backend()).lower()
    if backend == "nccl" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def model_consensus(model_options: dict, diffusion_model: torch.nn.Module) -> Consensus:
    """The consensus of the ranks sharing ``diffusion_model`` (run with ``model_options``): the single-rank
    ``Consensus`` unless it is split across ``torch.distributed`` ranks (see the module docstring)."""
    dist = torch.distributed
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() <= 1:
        return Consensus()
    groups = _xfuser_groups()
    if groups is not None:
        consensus = GroupConsensus(groups, "cpu" if all(_is_gloo(group) for group in groups) else _world_device())
    elif model_options.get("transformer_options", {}).get(SPLIT_KEY) or _fsdp_wrapped(diffusion_model):
        consensus = GroupConsensus([None], _world_device())
    else:
        return Consensus()
    logger.info("%s the model is split across %d ranks: every decision is agreed between them", LOG_PREFIX,
                consensus.size)
    return consensus


def _is_gloo(group) -> bool:
    return str(torch.distributed.get_backend(group)).lower() == "gloo"
