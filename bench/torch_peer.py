#!/usr/bin/python3
"""PyTorch peer of bench_train: the same networks, batch sizes, optimizer and thread count.

Run with Debian's interpreter (/usr/bin/python3: python3-torch 1.13), normally through bench/run.sh,
which sets OPENBLAS_NUM_THREADS=1 and makes libblas.so.3 resolve to OpenBLAS (see
/work/shared/specs/toolchain.md, "Peer baseline"). Prints one line per network, e.g.

    torch lenet5 batch=64 samples_per_s=13612.4 min=... max=... steps=200 repeats=5 threads=2
        data=fashion-mnist blas=openblas params=61684 loss=... rates=r1,r2,...   (one line; median of the repeats)

Networks (identical to models/LeNet5.h, models/MLP.h and models/ResNet.h):
  LeNet-5: conv1 1->6 k5 no bias, relu, maxpool 2, conv2 6->16 k5 no bias, relu, maxpool 2, flatten,
           fc1 400->120, relu, fc2 120->84, relu, fc3 84->10. Input [64, 1, 32, 32].
  MLP:     784->512, relu, 512->10. Input [100, 784].
  ResNet-18 (models/ResNet.h, resnet18 with in_channels 1, num_classes 10, small_input): stem conv 1->64
           3x3 stride 1 padding 1 no bias, BN, relu (no max-pool); layer1..layer4 of two BasicBlocks each
           (64, 128, 256, 512 channels, first-block strides 1, 2, 2, 2); BasicBlock = conv3x3(stride, pad 1,
           no bias), BN, relu, conv3x3(pad 1, no bias), BN, + identity or down_sample_layer (conv1x1(stride),
           no bias, + BN), relu; mean over H, W; end_point Linear 512->10. Input [32, 1, 32, 32].
           BatchNorm eps/momentum as Anvil's (MindSpore momentum m = torch momentum 1 - m).
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


class BasicBlock(nn.Module):
    """MindSpore ResidualBlockBase as in models/ResNet.cpp: bn1d/bn2d use eps 1e-4, MindSpore momentum 0.9
    (torch 0.1); the down-sampling BN uses eps 1e-5, MindSpore momentum 0.1 (torch 0.9)."""

    def __init__(self, in_channel, out_channel, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channel, out_channel, 3, stride=stride, padding=1, bias=False)
        self.bn1d = nn.BatchNorm2d(out_channel, eps=1e-4, momentum=0.1)
        self.conv2 = nn.Conv2d(out_channel, out_channel, 3, stride=1, padding=1, bias=False)
        self.bn2d = nn.BatchNorm2d(out_channel, eps=1e-4, momentum=0.1)
        self.down_sample_layer = None
        if stride != 1 or in_channel != out_channel:
            self.down_sample_layer = nn.Sequential(
                nn.Conv2d(in_channel, out_channel, 1, stride=stride, padding=0, bias=False),
                nn.BatchNorm2d(out_channel, eps=1e-5, momentum=0.9))

    def forward(self, x):
        out = F.relu(self.bn1d(self.conv1(x)))
        out = self.bn2d(self.conv2(out))
        identity = self.down_sample_layer(x) if self.down_sample_layer is not None else x
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """models/ResNet.h resnet18(ResNetOptions{.in_channels, .num_classes, .small_input = true})."""

    def __init__(self, in_channels=1, num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5, momentum=0.9)  # res_base stem: MindSpore momentum 0.1
        ins = [width, width, 2 * width, 4 * width]
        outs = [width, 2 * width, 4 * width, 8 * width]
        strides = [1, 2, 2, 2]
        for l in range(4):
            blocks = [BasicBlock(ins[l], outs[l], strides[l]), BasicBlock(outs[l], outs[l], 1)]
            setattr(self, f"layer{l + 1}", nn.Sequential(*blocks))
        self.end_point = nn.Linear(outs[3], num_classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.end_point(h.mean(dim=(2, 3)))


def param_count(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


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


def report(name, batch, rates, steps, common, kind, blas, loss, params):
    """One line in bench_train's format: samples_per_s is the median repeat, rates lists them all;
    params is the number of trainable parameter elements (bench_train prints the same count)."""
    all_rates = ",".join(str(round(r)) for r in rates)
    print(f"torch {name} batch={batch} samples_per_s={statistics.median(rates):.1f} min={min(rates):.1f} "
          f"max={max(rates):.1f} steps={steps} {common} data={kind} blas={blas} params={params} "
          f"loss={loss:.4f} rates={all_rates}", flush=True)


RESNET_BATCH = 32  # about 0.45 s per step with 2 threads on the 2-core VM when it is otherwise idle


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lenet-steps", type=int, default=200)
    ap.add_argument("--mlp-steps", type=int, default=300)
    ap.add_argument("--batches", type=int, default=50, help="distinct batches cycled through")
    ap.add_argument("--synthetic", action="store_true", help="random data instead of Fashion-MNIST")
    ap.add_argument("--resnet-steps", type=int, default=8)
    ap.add_argument("--resnet-warmup", type=int, default=2,
                    help="warm-up steps of ResNet-18 (--warmup applies to LeNet-5 and the MLP)")
    ap.add_argument("--resnet-batch", type=int, default=RESNET_BATCH)
    ap.add_argument("--only", choices=["lenet5", "mlp", "resnet18"], default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    blas = blas_in_use()
    common = f"repeats={args.repeats} threads={args.threads}"

    if args.only in (None, "lenet5"):
        xs, ys, kind = make_batches(64, args.batches, 32, False, args.synthetic)
        net = LeNet5()
        rates, loss = bench("lenet5", net, 64, xs, ys, args.warmup, args.lenet_steps, args.repeats)
        report("lenet5", 64, rates, args.lenet_steps, common, kind, blas, loss, param_count(net))
    if args.only in (None, "mlp"):
        xs, ys, kind = make_batches(100, args.batches, 0, True, args.synthetic)
        net = MLP()
        rates, loss = bench("mlp", net, 100, xs, ys, args.warmup, args.mlp_steps, args.repeats)
        report("mlp", 100, rates, args.mlp_steps, common, kind, blas, loss, param_count(net))
    if args.only in (None, "resnet18"):
        b = args.resnet_batch
        xs, ys, kind = make_batches(b, args.batches, 32, False, args.synthetic)
        net = ResNet18(1, 10)
        rates, loss = bench("resnet18", net, b, xs, ys, args.resnet_warmup, args.resnet_steps, args.repeats)
        report("resnet18", b, rates, args.resnet_steps, common, kind, blas, loss, param_count(net))
    return 0


if __name__ == "__main__":
    sys.exit(main())
