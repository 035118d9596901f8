"""What storing the tracker's memories in bf16 (as the reference does) costs on this CPU: the
fp32 <-> bf16 conversions of one memory frame, against a 2048^2 fp32 matmul for scale.

    python scripts/bench_memory_dtype.py                      # the CPU as it is
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python scripts/bench_memory_dtype.py   # as AVX2-only

A tracked frame converts up to num_maskmem memories per object (bf16 -> fp32) and stores one
(fp32 -> bf16).
"""

import argparse
import time

import torch

from sam2cli.engine.device import cpu_capability, cpu_has_fast_bf16


def ms_per_call(fn, n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=64, help="memory map side (64 for 1024-px input)")
    ap.add_argument("--mem-dim", type=int, default=64)
    ap.add_argument("--memories", type=int, default=7, help="memories read per object per frame")
    a = ap.parse_args()
    x = torch.randn(1, a.mem_dim, a.side, a.side)
    b = x.to(torch.bfloat16)
    store = ms_per_call(lambda: x.to(torch.bfloat16), 200)
    load = ms_per_call(lambda: b.float(), 200)
    m = torch.randn(2048, 2048)
    matmul = ms_per_call(lambda: m @ m, 5)
    print(f"cpu {cpu_capability()}, native bf16: {cpu_has_fast_bf16()}")
    print(f"per memory frame {tuple(x.shape)}: fp32->bf16 {store:.2f} ms, bf16->fp32 {load:.2f} ms")
    print(f"per object per tracked frame: {store + a.memories * load:.1f} ms of conversions")
    print(f"for scale, a 2048^2 fp32 matmul: {matmul:.1f} ms ({2 * 2048 ** 3 / matmul / 1e6:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
