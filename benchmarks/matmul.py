"""The machine's best matmul rate, the denominator of every utilisation figure (MFU, the decoding floor).

Measured, in every precision, because CPUs differ: bf16 ran at half the fp32 rate on one CPU of
this project and at four times it on another. A slow precision then cannot look efficient: a
figure is always against the fastest arithmetic the machine was seen to do.
"""

from __future__ import annotations

import time

import torch


def matmul_rate(dtype: torch.dtype, n: int, repeats: int = 10, device: str = "cpu") -> float:
    """GFLOP/s of an n x n matmul in `dtype` on `device` (the best of `repeats`, after a warm-up)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    synchronize = torch.cuda.synchronize if a.is_cuda else (lambda: None)  # GPU kernels run asynchronously
    a @ b
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def best_matmul_rate(sizes: tuple[int, ...] = (1024, 2048), device: str = "cpu") -> tuple[float, str, dict[str, float]]:
    """(the best GFLOP/s, where it was measured e.g. "bfloat16 2048^2", every rate measured by that name)."""
    rates = {f"{str(dtype).removeprefix('torch.')} {n}^2": matmul_rate(dtype, n, device=device)
             for dtype in (torch.float32, torch.bfloat16) for n in sizes}
    where = max(rates, key=rates.get)
    return rates[where], where, rates
