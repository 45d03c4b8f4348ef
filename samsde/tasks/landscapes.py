"""Analytic landscapes: the quadratic (a saddle when its spectrum has a negative eigenvalue) and two Gaussian basins."""

from __future__ import annotations

import torch
from torch import Tensor

from samsde.seeding import make_generator
from samsde.tasks.base import DTYPE, Bound, ConstantHessian, Linearization, Task, check_params


class Quadratic(Task):
    """f(x) = x^T H x / 2 with H = Q diag(spectrum) Q^T.

    Either ``spectrum`` is given (then Q = I unless ``rotate``), or H = A A^T / (2d) with A ~ N(0,1)^{d x 2d}.
    Negative eigenvalues are allowed: the origin is then a saddle.
    """

    name = "quadratic"
    param_forms = (("dim",), ("spectrum",))  # generated of dimension dim, or given by its spectrum
    param_bounds = {"dim": Bound(1, "the dimension of x", integer=True)}

    def __init__(
        self,
        dim: int | None = None,
        spectrum: list[float] | None = None,
        seed: int = 0,
        x0: list[float] | None = None,
        rotate: bool = False,
    ):
        check_params(Quadratic, dim=dim)
        gen = make_generator(seed, "quadratic")
        if spectrum is not None:
            if len(spectrum) == 0:
                raise ValueError("quadratic: the spectrum is empty (the dimension of x is its length)")
            spectrum_t = torch.as_tensor(spectrum, dtype=DTYPE)
            if dim is not None and dim != spectrum_t.numel():
                raise ValueError(f"quadratic: dim {dim} does not match the spectrum's length {spectrum_t.numel()}")
            dim = spectrum_t.numel()
            q = random_orthogonal(dim, gen) if rotate else torch.eye(dim, dtype=DTYPE)
            self.H = (q * spectrum_t) @ q.T
        else:
            dim = 10 if dim is None else dim
            a = torch.randn(dim, 2 * dim, generator=gen, dtype=DTYPE)
            self.H = a @ a.T / (2 * dim)
        self.H = (self.H + self.H.T) / 2
        self.dim = dim
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(self.H)
        if x0 is not None and len(x0) != dim:
            raise ValueError(f"quadratic: x0 has length {len(x0)} but the dimension is {dim}")
        self._x0 = None if x0 is None else torch.as_tensor(x0, dtype=DTYPE)

    def loss(self, x: Tensor) -> Tensor:
        return 0.5 * ((x @ self.H) * x).sum(-1)

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is not None:
            self.batch_loss(x, batch)  # raises: a quadratic is not a finite sum
        return x @ self.H

    def linearize(self, x: Tensor) -> Linearization:
        return ConstantHessian(x @ self.H, self.H)

    def hessian(self, x: Tensor) -> Tensor:
        return self.H.expand(x.shape[0], -1, -1)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return self._x0.clone() if self._x0 is not None else super().initial_point(generator)


def random_orthogonal(d: int, generator: torch.Generator, dtype: torch.dtype = DTYPE) -> Tensor:
    """A Haar-random orthogonal d x d matrix: Q of G = Q R (QR of a Gaussian G drawn from ``generator``) with column j
    multiplied by sign(R_jj), the sign convention that makes Q uniform on the orthogonal group."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))


class TwoBasin(Task):
    """Two Gaussian wells of equal depth, a sharp one at -c e_1 and a flat one at +c e_1.

    f(x) = -exp(-|x + c e_1|^2 / (2 w_s^2)) - exp(-|x - c e_1|^2 / (2 w_f^2)).  Both wells have depth ~1, so the
    minima have (nearly) equal loss and only their curvature, ~1/w_s^2 versus ~1/w_f^2, tells them apart.
    The initial point is the origin, on the ridge between the basins.
    """

    name = "two_basin"
    param_bounds = {
        "dim": Bound(1, "the dimension of x", integer=True),
        "center": Bound(0, "the wells sit at -center e_1 and +center e_1, on either side of x_1 = 0", strict=True),
        "sharp_width": Bound(0, "a Gaussian well's width", strict=True),
        "flat_width": Bound(0, "a Gaussian well's width", strict=True),
    }

    def __init__(self, dim: int = 2, center: float = 1.0, sharp_width: float = 0.25, flat_width: float = 0.75):
        check_params(TwoBasin, dim=dim, center=center, sharp_width=sharp_width, flat_width=flat_width)
        self.dim = dim
        self.center = center
        self.sharp_width = sharp_width
        self.flat_width = flat_width

    def loss(self, x: Tensor) -> Tensor:
        shift = torch.zeros(self.dim, dtype=x.dtype, device=x.device)
        shift[0] = self.center
        sharp = torch.exp(-((x + shift) ** 2).sum(-1) / (2 * self.sharp_width**2))
        flat = torch.exp(-((x - shift) ** 2).sum(-1) / (2 * self.flat_width**2))
        return -sharp - flat

    def basin(self, x: Tensor) -> Tensor:
        """+1 for the flat basin (x_1 > ridge), -1 for the sharp one, by the sign of the first coordinate."""
        return torch.where(x[:, 0] > 0, 1, -1)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return torch.zeros(self.dim, dtype=DTYPE)
