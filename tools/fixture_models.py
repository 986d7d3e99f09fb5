"""The torch networks of tests/fixtures/ and their brief training (tools/make_fixtures.py exports them).

Each builder returns an untrained network initialised from torch's global generator; make_fixtures
seeds that generator where the committed fixtures were made with it seeded (``gap_relu_head`` and
``gap_logits_head`` are built before the seed is set, so they must stay built in that order to
regenerate the same bytes). Needs torch (``.[train]``).
"""
from __future__ import annotations

import numpy as np

SEED = 1234


def small_mnist():
    """The bundled architecture scaled down: 1->4->8 channels, 14x14 input; ``use_view`` picks the
    flatten (``x.view(x.size(0), -1)`` when set, ``nn.Flatten`` otherwise)."""
    from torch import nn

    class SmallMnist(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
                nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
            )
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(8 * 3 * 3, 10)
            self.use_view = False

        def forward(self, x):
            x = self.features(x)
            x = x.view(x.size(0), -1) if self.use_view else self.flatten(x)
            return self.fc(x)

    return SmallMnist()


def digits_signed():
    """8x8 input: stride-2 padded conv, dilation-2 conv, global average pool, dense output."""
    import torch
    from torch import nn

    class DigitsSigned(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)      # 8x8 -> 4x4
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(8, 16, 3, dilation=2, padding=2)   # 4x4 -> 4x4
            self.relu2 = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.gap(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
            return self.fc(torch.flatten(x, 1))

    return DigitsSigned()


def digits_0_16():
    """8x8 input: unpadded conv, stride-2 padded conv, two dense layers."""
    from torch import nn

    class Digits016(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 6, 3), nn.ReLU(),                        # 8x8 -> 6x6
                nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),   # 6x6 -> 3x3
                nn.Flatten(),
                nn.Linear(72, 32), nn.ReLU(),
                nn.Linear(32, 10),
            )

        def forward(self, x):
            return self.body(x)

    return Digits016()


def gap_relu_head():
    """8x8 input: the last conv has a ReLU and a global average pool follows it."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),                     # 8x8 -> 8x8
        nn.Conv2d(8, 10, 3, stride=2, padding=1), nn.ReLU(),          # 8x8 -> 4x4
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


def gap_logits_head():
    """8x8 input: Conv-BN-ReLU-AvgPool, then a logits conv and a global average pool."""
    from torch import nn

    class LogitsHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # 8x8 -> 8x8
                nn.AvgPool2d(2),                                              # -> 4x4
                nn.Conv2d(8, 10, 3, padding=1),                               # logits map 10x4x4
                nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def forward(self, x):
            return self.body(x)

    return LogitsHead()


def train(model, x, y, steps: int, lr: float = 1e-2, bs: int = 64, seed: int = SEED):
    """``steps`` Adam steps of cross-entropy on random batches (seeded generator); returns ``model`` in eval mode."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (bs,), generator=g)
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    return model


def torch_logits(model, x):
    """float32 logits of ``model`` on ``x`` (numpy in, numpy out), without gradients."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
