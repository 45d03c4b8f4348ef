"""A user model for samsde: a small convolutional network on scikit-learn's digits (docs/your-own-model.md).

Nothing here comes from samsde: the file follows the contract alone.  ``build(**params)`` returns the model (its
parameters are the initial point), the data and the loss; samsde flattens the parameters into x in R^d and asks the
paper's question of f(x) = mean_i cross_entropy_i(x) + (l2 / 2) |x|^2.
"""

import torch
from sklearn.datasets import load_digits
from torch import nn


class SmallConvNet(nn.Module):
    """8x8 image -> 3x3 convolution of stride 2 (``channels`` maps of 3x3) -> tanh -> linear -> 10 logits."""

    def __init__(self, channels: int = 4, n_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, stride=2)
        self.head = nn.Linear(channels * 9, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.conv(images.unsqueeze(1)))
        return self.head(hidden.flatten(1))


def build(n_samples: int = 120, channels: int = 4, l2: float = 1e-3, seed: int = 0) -> dict:
    """``n_samples`` digits drawn at random (by ``seed``), pixels scaled to [0, 1]; the network initialised from
    ``seed`` (PyTorch's default initialisation)."""
    digits = load_digits()
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(digits.target), generator=generator)[:n_samples]
    images = torch.tensor(digits.images, dtype=torch.float64)[pick] / 16.0
    labels = torch.tensor(digits.target)[pick]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = SmallConvNet(channels)
    return {"model": model, "inputs": images, "targets": labels, "loss": "cross_entropy", "l2": l2}
