"""Several ``torch.distributed`` ranks on CPU (gloo) for the tests: one forked process per rank, every rank
running the same function, each rank's answer (or error) collected, a hang turned into a failure.

Forked, so a rank inherits what the test process already imported (an in-process ComfyUI included) and starts
in a fraction of a second. Every rank's collectives time out after ``timeout`` seconds (gloo's own timeout), and
a rank still running ``timeout`` seconds after that is killed: ranks that disagree fail the test, never hang it.
"""

from __future__ import annotations

import datetime
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, timeout: float, target: Callable, args: tuple, answers) -> None:
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout))
        try:
            answers.put((rank, "ok", target(rank, world, *args)))
        finally:
            dist.destroy_process_group()
    except BaseException:  # noqa: BLE001  (any failure of a rank is the test's answer, never a hang)
        answers.put((rank, "error", traceback.format_exc()))
    finally:
        answers.close()
        answers.join_thread()  # the answer is in the pipe before the rank ends
        os._exit(0)  # a forked rank never runs the test process's exit handlers


def run_ranks(target: Callable, world: int, *args, timeout: float = 30.0) -> list:
    """``target(rank, world, *args)`` on ``world`` forked ranks of one gloo process group; the answers by rank
    (picklable values). ``AssertionError`` when a rank raised, or did not answer in time (then all are killed)."""
    context = mp.get_context("fork")
    answers = context.Queue()
    port = _free_port()
    ranks = [context.Process(target=_rank_main, args=(rank, world, port, timeout, target, args, answers))
             for rank in range(world)]
    for process in ranks:
        process.start()
    results: dict[int, object] = {}
    errors = []
    deadline = time.monotonic() + 2 * timeout
    try:
        while len(results) + len(errors) < world:
            try:
                rank, status, value = answers.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if status == "ok":
                results[rank] = value
            else:
                errors.append(f"rank {rank}:\n{value}")
        for process in ranks:
            process.join(max(deadline - time.monotonic(), 0.1))
    finally:
        hung = [rank for rank, process in enumerate(ranks) if process.is_alive()]
        for process in ranks:
            if process.is_alive():
                process.kill()
                process.join()
    assert not errors, "\n".join(errors)
    assert not hung, f"ranks {hung} still ran {2 * timeout:.0f} s after they started: they disagree and hung"
    return [results[rank] for rank in range(world)]
