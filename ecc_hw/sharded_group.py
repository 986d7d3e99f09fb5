"""Sharded evaluation, the process-group part: torch.distributed (gloo) on a local or an existing cluster.

Two ways in (docs/backends.md, "Sharded evaluation"):

- local: ``ecc-hw evaluate --workers N`` makes this process rank 0 of a gloo group on 127.0.0.1 (a
  ``TCPStore`` on a free port) and starts N - 1 more with ``multiprocessing``'s spawn; each gets its
  contiguous shard of the images and a share of this process's CPUs;
- existing: under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` set) every process
  runs the same command, joins that group (``env://``) and evaluates its shard.

Every rank sends rank 0 either its per-image results or its error (``Payload``), so an error anywhere ends
every rank rather than leaving rank 0 waiting. On a local group rank 0 also watches its processes: each
marks the store when it has joined and when its shard is done (``mark``), and ``wait_for`` gives up in one
line when a process ends before its mark (gloo itself would wait ``TIMEOUT``). Under torchrun, torchrun
watches its processes. The splitting and merging are ``ecc_hw.sharded``'s.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta

from .errors import UserError

# A gloo collective waits this long for the slowest rank (a dead peer's closed socket ends it at once).
TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class Member:
    """This process's place in the group: global and local (this node's) rank and size."""

    rank: int
    world: int
    local_rank: int = 0
    local_world: int = 1


@dataclass(frozen=True)
class Payload:
    """What a rank sends rank 0: its results (None for an empty shard), or an error as text."""

    results: object = None
    error: str | None = None        # a UserError's message, or a traceback
    field: str | None = None        # the UserError's field
    user_error: bool = False


def torchrun_member(environ=None) -> Member | None:
    """The ``Member`` that torchrun's (or any ``env://`` launcher's) variables describe, or None outside one."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local_rank = int(environ.get("LOCAL_RANK", rank))
        local_world = int(environ.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise UserError(f"RANK={environ['RANK']!r}, WORLD_SIZE={environ['WORLD_SIZE']!r}: not integers "
                        "(torch.distributed's environment)") from None
    if not 0 <= rank < world:
        raise UserError(f"RANK={rank} is not within WORLD_SIZE={world} (torch.distributed's environment)")
    return Member(rank, world, local_rank, local_world)


def cpu_share(local_rank: int, local_world: int) -> set[int] | None:
    """The CPUs of this process's affinity that local rank ``local_rank`` of ``local_world`` takes (every
    ``local_world``-th), or None (leave the affinity) when there are fewer CPUs than ranks or no affinity."""
    if local_world <= 1 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return set(cpus[local_rank::local_world]) if len(cpus) >= local_world else None


def set_cpus(cpus: set[int] | None) -> set[int] | None:
    """Pin this process to ``cpus`` (None: leave it); return the previous affinity (to restore), or None."""
    if cpus is None:
        return None
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    return previous


def loopback_interface() -> str | None:
    """The loopback interface's name (``lo``, ``lo0``), for gloo's ``GLOO_SOCKET_IFNAME`` on a local group."""
    names = [name for _, name in socket.if_nameindex()] if hasattr(socket, "if_nameindex") else []
    return next((name for name in names if name.startswith("lo")), None)


def payload_of(compute) -> Payload:
    """``compute()``'s results, or the error it raised (a ``UserError`` in one line, anything else with its
    traceback), as a ``Payload``."""
    try:
        return Payload(results=compute())
    except UserError as error:
        return Payload(error=error.message, field=error.field, user_error=True)
    except Exception:  # noqa: BLE001 - sent to rank 0, which raises it
        return Payload(error=traceback.format_exc())


def raise_errors(payloads: list[Payload]) -> list:
    """The ranks' results in rank order, or the lowest rank's error raised (a ``UserError`` stays one)."""
    for rank, payload in enumerate(payloads):
        if payload.error is None:
            continue
        where = "" if rank == 0 else f"worker {rank} of {len(payloads)}: "
        if payload.user_error:
            if payload.field:
                raise UserError(f"{where}{payload.error}" if where else payload.error, field=payload.field)
            raise UserError(f"{where}{payload.error}")
        raise RuntimeError(f"{where or 'worker 0: '}failed:\n{payload.error}")
    return [payload.results for payload in payloads]


def join_group(member: Member, store=None) -> None:
    """Join the gloo process group: through ``store`` (local), or ``env://`` (torchrun's variables)."""
    import torch.distributed as dist

    if store is None:
        dist.init_process_group("gloo", init_method="env://", rank=member.rank, world_size=member.world,
                                timeout=TIMEOUT)
    else:
        dist.init_process_group("gloo", store=store, rank=member.rank, world_size=member.world, timeout=TIMEOUT)


def gather(payload: Payload, member: Member) -> list[Payload] | None:
    """Every rank's payload on rank 0 (in rank order); None on the others. Then leaves the group."""
    import torch.distributed as dist

    try:
        out = [None] * member.world if member.rank == 0 else None
        dist.gather_object(payload, out, dst=0)
        return out
    finally:
        dist.destroy_process_group()


def client_store(port: int, world: int):
    """A client of rank 0's ``TCPStore`` on 127.0.0.1:``port``."""
    import torch.distributed as dist

    return dist.TCPStore("127.0.0.1", port, world, is_master=False, timeout=TIMEOUT)


def start_local(shards: list, worker, worker_args: tuple) -> tuple[object, list]:
    """Rank 0's ``TCPStore`` on a free port of 127.0.0.1 and one spawned process per shard after the first:
    ``worker(rank, world, port, cpus, shard, *worker_args)``, with its share of the CPUs. Returns the store
    (for rank 0's ``join_group``) and the processes (to ``join``)."""
    import multiprocessing

    import torch.distributed as dist

    world = len(shards)
    interface = loopback_interface()
    if interface is not None:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", interface)
    store = dist.TCPStore("127.0.0.1", 0, world, is_master=True, wait_for_workers=False, timeout=TIMEOUT)
    context = multiprocessing.get_context("spawn")
    processes = []
    for rank in range(1, world):
        process = context.Process(target=worker, args=(rank, world, store.port, cpu_share(rank, world),
                                                       shards[rank], *worker_args), daemon=True)
        process.start()
        processes.append(process)
    return store, processes


def mark(store, stage: str, rank: int) -> None:
    """Tell rank 0 (through the local ``store``) that ``rank`` has reached ``stage`` (``joined``, ``done``)."""
    if store is not None:
        store.set(f"{stage}/{rank}", "1")


def wait_for(store, stage: str, processes: list, poll_s: float = 0.05) -> None:
    """Wait until every spawned process (ranks 1.. in order) has marked ``stage``; a one-line ``UserError``
    when one has ended without doing so (crashed, killed, or out of memory)."""
    pending = dict(enumerate(processes, start=1))
    while pending:
        for rank, process in list(pending.items()):
            if store.check([f"{stage}/{rank}"]):
                del pending[rank]
            elif not process.is_alive() and not store.check([f"{stage}/{rank}"]):
                raise UserError(f"worker {rank} of {len(processes) + 1} ended (exit status {process.exitcode}) "
                                f"before it had {stage}", field="workers")
        if pending:
            time.sleep(poll_s)


def stop_local(processes: list, wait_s: float = 30.0) -> None:
    """Wait for the spawned processes to end; terminate any still running after ``wait_s``."""
    for process in processes:
        process.join(timeout=wait_s)
        if process.is_alive():
            process.terminate()
            process.join()
