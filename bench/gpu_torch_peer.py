#!/usr/bin/env python3
"""PyTorch peer of bench/gpu_bench.cpp: the same training step on the same GPU, eager mode.

Step: forward, cross_entropy (mean), backward, SGD(lr 0.01, momentum 0.9) step, zero_grad(set_to_none).
Synthetic N(0,1) inputs and uniform labels, already on the GPU. TF32 off unless --tf32.
ResNet-50 is torchvision's architecture rebuilt here (no torchvision needed): Bottleneck [3, 4, 6, 3],
stride on the 3x3 conv, 7x7/2 stem + 3x3/2 max-pool, as the MindSpore zoo resnet50 that models/ResNet.h follows.
Prints: torch <net> batch=<B> samples_per_s=<rate> ms_per_step=<ms>
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self, num_class=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, bias=False)
        self.conv2 = nn.Conv2d(6, 16, 5, bias=False)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_class)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, cout, stride):
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + idt)


class ResNet50(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for n, cout, stride in ((3, 256, 1), (4, 512, 2), (6, 1024, 2), (3, 2048, 2)):
            for i in range(n):
                layers.append(Bottleneck(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=["resnet50", "lenet5"], required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True  # gpu_bench sets CudaOptions::benchmark too
    dev = torch.device("cuda", 0)
    torch.manual_seed(0)
    if a.net == "resnet50":
        net, shape, classes = ResNet50(a.classes), (a.batch, 3, 224, 224), a.classes
    else:
        net, shape, classes = LeNet5(10), (a.batch, 1, 32, 32), 10
    net = net.to(dev).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(shape, device=dev)
    y = torch.randint(0, classes, (a.batch,), device=dev)

    def step():
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    torch.cuda.synchronize()
    s = time.perf_counter() - t0
    print(f"torch {a.net} batch={a.batch} samples_per_s={a.steps * a.batch / s:.1f} ms_per_step={1e3 * s / a.steps:.3f}",
          flush=True)


if __name__ == "__main__":
    main()
