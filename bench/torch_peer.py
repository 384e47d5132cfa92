#!/usr/bin/python3
"""PyTorch peer of bench_train: the same networks, batch sizes, optimizer and thread count.

Run with Debian's interpreter (/usr/bin/python3: python3-torch 1.13), normally through bench/run.sh,
which sets OPENBLAS_NUM_THREADS=1 and makes libblas.so.3 resolve to OpenBLAS (see
/work/shared/specs/toolchain.md, "Peer baseline"). Prints one line per network, e.g.

    torch lenet5 batch=64 samples_per_s=13612.4 min=... max=... steps=200 repeats=5 threads=2
        data=fashion-mnist blas=openblas loss=... rates=r1,r2,...   (one line; median of the repeats)

Networks (identical to models/LeNet5.h and models/MLP.h):
  LeNet-5: conv1 1->6 k5 no bias, relu, maxpool 2, conv2 6->16 k5 no bias, relu, maxpool 2, flatten,
           fc1 400->120, relu, fc2 120->84, relu, fc3 84->10. Input [64, 1, 32, 32].
  MLP:     784->512, relu, 512->10. Input [100, 784].
Optimizer: SGD with momentum (lr 0.01, momentum 0.9; same update as MindSpore Momentum).
Loss: softmax cross-entropy, mean over the batch.
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self, num_class=10, num_channel=1):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channel, 6, 5, bias=False)
        self.conv2 = nn.Conv2d(6, 16, 5, bias=False)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_class)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    def __init__(self, in_features=784, hidden=512, num_class=10):
        super().__init__()
        self.fc0 = nn.Linear(in_features, hidden)
        self.fc1 = nn.Linear(hidden, num_class)

    def forward(self, x):
        return self.fc1(F.relu(self.fc0(torch.flatten(x, 1))))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def fashion_mnist_dir():
    d = os.environ.get("ANVIL_FASHION_MNIST_DIR", "")
    return d if d else "/usr/share/datasets/fashion-mnist"


def make_batches(batch, count, pad_to, flat, synthetic):
    """`count` batches: real Fashion-MNIST training examples (scaled and normalized like
    MnistDataset's defaults: (x/255 - 0.1307)/0.3081, zero-padded to pad_to), or seeded random data."""
    n = batch * count
    images = None
    if not synthetic:
        d = fashion_mnist_dir()
        try:
            images = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))[:n]
            labels = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))[:n]
        except OSError:
            images = None
    if images is not None and images.shape[0] == n:
        x = (images.float() / 255.0 - 0.1307) / 0.3081  # [n, 28, 28]
        y = labels.long()
        kind = "fashion-mnist"
    else:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(n, 28, 28, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        kind = "synthetic"
    if pad_to and pad_to > 28:
        before = (pad_to - 28) // 2
        after = pad_to - 28 - before
        pad_value = (0.0 - 0.1307) / 0.3081
        x = F.pad(x, (before, after, before, after), value=pad_value)
    x = x.reshape(n, -1) if flat else x.reshape(n, 1, x.shape[-2], x.shape[-1])
    xs = [x[i * batch:(i + 1) * batch].contiguous() for i in range(count)]
    ys = [y[i * batch:(i + 1) * batch].contiguous() for i in range(count)]
    return xs, ys, kind


def bench(name, net, batch, xs, ys, warmup, steps, repeats):
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    net.train()
    k = 0

    def step():
        nonlocal k
        x, y = xs[k % len(xs)], ys[k % len(ys)]
        k += 1
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        dt = time.perf_counter() - t0
        rates.append(steps * batch / dt)
    loss_value = float(loss.detach())
    return rates, loss_value


def blas_in_use():
    """Which libblas.so.3 the dynamic loader mapped into this process."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "libblas" in line}
    except OSError:
        return "unknown"
    for lib in libs:
        if "openblas" in os.path.realpath(lib):
            return "openblas"
    return "reference" if libs else "none"


def report(name, batch, rates, steps, common, kind, blas, loss):
    """One line in bench_train's format: samples_per_s is the median repeat, rates lists them all."""
    all_rates = ",".join(str(round(r)) for r in rates)
    print(f"torch {name} batch={batch} samples_per_s={statistics.median(rates):.1f} min={min(rates):.1f} "
          f"max={max(rates):.1f} steps={steps} {common} data={kind} blas={blas} loss={loss:.4f} "
          f"rates={all_rates}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lenet-steps", type=int, default=200)
    ap.add_argument("--mlp-steps", type=int, default=300)
    ap.add_argument("--batches", type=int, default=50, help="distinct batches cycled through")
    ap.add_argument("--synthetic", action="store_true", help="random data instead of Fashion-MNIST")
    ap.add_argument("--only", choices=["lenet5", "mlp"], default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    blas = blas_in_use()
    common = f"repeats={args.repeats} threads={args.threads}"

    if args.only in (None, "lenet5"):
        xs, ys, kind = make_batches(64, args.batches, 32, False, args.synthetic)
        rates, loss = bench("lenet5", LeNet5(), 64, xs, ys, args.warmup, args.lenet_steps, args.repeats)
        report("lenet5", 64, rates, args.lenet_steps, common, kind, blas, loss)
    if args.only in (None, "mlp"):
        xs, ys, kind = make_batches(100, args.batches, 0, True, args.synthetic)
        rates, loss = bench("mlp", MLP(), 100, xs, ys, args.warmup, args.mlp_steps, args.repeats)
        report("mlp", 100, rates, args.mlp_steps, common, kind, blas, loss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
