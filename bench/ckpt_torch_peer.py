#!/usr/bin/python3
"""PyTorch peer of ckpt_bench: torch.save + fsync and torch.load of the same state (N float32 parameters
in tensors of up to 4M elements), in the same directory. Run with Debian's /usr/bin/python3
(python3-torch), normally through bench/ckpt_bench.sh. Prints lines in ckpt_bench's format:

    torch_save_fsync seconds=<median> gib_per_s=<...> runs=<...>
    torch_load seconds=<median> gib_per_s=<...> runs=<...>          (warm page cache, allocating)
    torch_load_into_model seconds=<median> ...   (torch.load + model.load_state_dict into existing tensors)
"""
import argparse
import os
import statistics
import time

import torch


def report(name, secs, nbytes):
    m = statistics.median(secs)
    print(f"{name} seconds={m:.4f} gib_per_s={nbytes / m / 2**30:.3f} min={min(secs):.4f} "
          f"runs={','.join(f'{s:.3f}' for s in secs)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--params", type=int, default=100_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    chunk = 4 << 20
    model = torch.nn.Module()
    for k, i in enumerate(range(0, a.params, chunk)):
        n = min(chunk, a.params - i)
        model.register_parameter(f"layer{k}", torch.nn.Parameter(torch.arange(n, dtype=torch.float32) % 1000 * 1e-3,
                                                                 requires_grad=False))
    sd = model.state_dict()
    nbytes = a.params * 4
    path = os.path.join(a.dir, "torch_ckpt_bench.pt")
    save, load, load_into = [], [], []
    for _ in range(a.repeats):
        if os.path.exists(path):
            os.remove(path)
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            torch.save(sd, f)
            f.flush()
            os.fsync(f.fileno())
        save.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loaded = torch.load(path)
        load.append(time.perf_counter() - t0)
        del loaded
        t0 = time.perf_counter()
        model.load_state_dict(torch.load(path))
        load_into.append(time.perf_counter() - t0)
    os.remove(path)
    report("torch_save_fsync", save, nbytes)
    report("torch_load", load, nbytes)
    report("torch_load_into_model", load_into, nbytes)


if __name__ == "__main__":
    main()
