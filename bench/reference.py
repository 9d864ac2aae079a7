"""The lesson's two networks in plain PyTorch, written as a PyTorch user would, with the
same hyperparameters as fashion-tch: the reference our speed is measured against.

usage: python3 bench/reference.py --model cnn|dense [--epochs N] [--device cpu|cuda]
                                  [--channels-last] [--fused] [--threads N] [--data-dir DIR]

--fused gives Adam PyTorch's fused kernel (`torch.optim.Adam(..., fused=True)`, on the
CPU since PyTorch 2.4), as fashion-tch's own Adam uses it; --channels-last lays the CNN
out as PyTorch's CPU convolutions prefer.

Prints one line per epoch: seconds (training and scoring the test set, as fashion-tch's
epoch lines count them), training images/s and test accuracy.
"""

import argparse
import gzip
import os
import time

import torch
from torch import nn

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(data_dir, stem, header):
    path = os.path.join(data_dir, stem + ".gz")
    opener = gzip.open if os.path.exists(path) else open
    with opener(path if os.path.exists(path) else os.path.join(data_dir, stem), "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)


def load(data_dir, device):
    def images(stem):
        return (read_idx(data_dir, stem, 16).view(-1, 1, 28, 28).float() / 255.0).to(device)

    def labels(stem):
        return read_idx(data_dir, stem, 8).long().to(device)

    return (
        images(FILES["train_images"]),
        labels(FILES["train_labels"]),
        images(FILES["test_images"]),
        labels(FILES["test_labels"]),
    )


def model(name):
    if name == "dense":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["dense", "cnn"], required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--fused", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    xs, ys, test_xs, test_ys = load(args.data_dir, device)
    net = model(args.model).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=args.fused or None)
    loss_fn = nn.CrossEntropyLoss()
    n = xs.shape[0]
    for epoch in range(1, args.epochs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        net.train()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, args.batch_size):
            idx = perm[i : i + args.batch_size]
            x = xs[idx].contiguous(memory_format=fmt)
            loss = loss_fn(net(x), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            correct = sum(
                (net(test_xs[i : i + 1000].contiguous(memory_format=fmt)).argmax(1) == test_ys[i : i + 1000]).sum().item()
                for i in range(0, test_xs.shape[0], 1000)
            )
        # like fashion-tch's epoch time, this includes scoring the test set
        seconds = time.perf_counter() - start
        print(
            f"pytorch {args.model} epoch {epoch} seconds {seconds:.2f} "
            f"images/s {n / seconds:.0f} test_accuracy {correct / test_xs.shape[0]:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
