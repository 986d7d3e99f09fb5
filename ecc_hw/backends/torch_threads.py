"""Chunks of images on threads for the torch CPU backend, as ``ecc_hw.if_network.run_chunks`` does for NumPy.

Torch's own intra-op threads (OpenMP) lose badly on a shared machine (measured: 2 threads at half the
speed of 1 on 2 loaded cores), while its kernels release the GIL: so on the CPU every chunk runs on a
thread of its own with one torch thread each. On CUDA the chunks run one after the other. Every chunk is
computed as if alone, so the results do not depend on the number of workers.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..if_network import default_workers
from .torch_device import torch_module


def chunk_slices(total: int, chunk: int, workers: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) slices of ``total`` images, at most ``chunk`` long, at least one per worker."""
    chunk = max(1, min(chunk, -(-total // workers)))
    return [(start, min(start + chunk, total)) for start in range(0, total, chunk)]


def map_chunks(run_chunk, total: int, chunk: int, backend, workers: int | None = None, on_result=None) -> list:
    """``run_chunk(start, stop)`` over the slices of ``total`` images, in order; ``on_result(result, images)``
    as each finishes in order. CPU: ``workers`` threads (default: every CPU), one torch thread each."""
    torch = torch_module()
    workers = 1 if backend.device != "cpu" else default_workers() if workers is None else max(1, int(workers))
    slices = chunk_slices(total, chunk, workers)
    results = []
    if workers == 1 or len(slices) == 1:
        previous = torch.get_num_threads()
        try:
            if backend.device == "cpu" and workers == 1:
                torch.set_num_threads(1)
            for start, stop in slices:
                results.append(run_chunk(start, stop))
                if on_result is not None:
                    on_result(results[-1], stop - start)
        finally:
            torch.set_num_threads(previous)
        return results
    previous = torch.get_num_threads()

    def one_thread(start: int, stop: int):
        torch.set_num_threads(1)
        return run_chunk(start, stop)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one_thread, start, stop) for start, stop in slices]
            for (start, stop), future in zip(slices, futures):
                results.append(future.result())
                if on_result is not None:
                    on_result(results[-1], stop - start)
    finally:
        torch.set_num_threads(previous)
    return results
