# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""SVAG (Li, Malladi, Arora 2021) for any registered algorithm: its SDE simulated with optimizer steps only.

With D(x; s) the algorithm's update direction on one noise draw s (:func:`samsde.algorithms.update_direction`:
USAM g_s(x + rho g_s), SAM g_s(x + rho g_s / |g_s|), DNSAM g_s(x + rho g_s / |grad f|), SGD g_s(x)), b = E D and
C = Cov D, one SVAG substep is

    x <- x - (eta / l) (a1 D(x; s1) + a2 D(x; s2)),   a1,2 = (1 +- sqrt(2 l - 1)) / 2,

with two independent draws s1, s2.  a1 + a2 = 1 and a1^2 + a2^2 = l, so D~ = a1 D1 + a2 D2 has E D~ = b and
Cov D~ = l C; l substeps advance one unit eta of time by a mean -eta b and a covariance l (eta/l)^2 l C = eta^2 C,
like one optimizer step, but in ever smaller pieces: as l grows SVAG_l converges weakly, at order 1 in 1/l, to
dX = -b dt + sqrt(eta) C^(1/2) dW (t = k eta).  l = 1 (a2 = 0) is the discrete optimizer itself; the second draw,
which has no weight then, is not drawn.  No Hessian, no covariance root, no inner moments: on any task.

Coupling to the SDE's Brownian path under additive noise Z ~ N(0, Sigma), Sigma = S S^T (docs/concepts.md, "SVAG"):
U = a1 Z1 + a2 Z2 and V = a2 Z1 - a1 Z2 are independent N(0, l Sigma), so the runner takes
U = -(l / sqrt(eta)) S dW_sub from the Brownian increment dW_sub of the substep (the sum of the fine increments the
reference SDE sees over it), draws V = sqrt(l) S xi from a stream of its own, and sets (:func:`coupled_draws`)
    Z1 = (a1 U + a2 V) / l,   Z2 = (a2 U - a1 V) / l.
Z1, Z2 are independent N(0, Sigma) (exact marginals), and SVAG's noise -(eta/l) U = sqrt(eta) S dW_sub is the SDE's.
Under mini-batch noise the two draws are two independent batches; the runner draws them itself (not coupled).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from samsde._kept import KeptAt
from samsde.algorithms import check_step_sizes, get, update_direction
from samsde.noise import MiniBatch, NoiseModel
from samsde.tasks import Task

GradFn = Callable[[Tensor], Tensor]


def check_amplification(l: int) -> None:
    if not (isinstance(l, int) and not isinstance(l, bool) and l >= 1):
        raise ValueError(f"the SVAG amplification l must be an integer >= 1, got {l!r}")


def svag_weights(l: int) -> tuple[float, float]:
    """(a1, a2) = ((1 + sqrt(2 l - 1)) / 2, (1 - sqrt(2 l - 1)) / 2): a1 + a2 = 1, a1^2 + a2^2 = l."""
    check_amplification(l)
    root = math.sqrt(2 * l - 1)
    return (1 + root) / 2, (1 - root) / 2


def n_draws(l: int) -> int:
    """Noise draws per substep: two, or one at l = 1 where a2 = 0."""
    check_amplification(l)
    return 1 if l == 1 else 2


def coupled_draws(u: Tensor, v: Tensor, l: int) -> tuple[Tensor, Tensor]:
    """(Z1, Z2) = ((a1 U + a2 V) / l, (a2 U - a1 V) / l): for independent U, V ~ N(0, l Sigma) two independent
    N(0, Sigma) draws with a1 Z1 + a2 Z2 = U."""
    a1, a2 = svag_weights(l)
    return (a1 * u + a2 * v) / l, (a2 * u - a1 * v) / l


def svag_step(
    algorithm,
    x: Tensor,
    eta: float,
    rho: float,
    l: int,
    stochastic_grad: GradFn,
    full_grad: Callable[[], Tensor],
    g: Tensor | None = None,
) -> Tensor:
    """One SVAG substep x - (eta / l) (a1 D(x; s1) + a2 D(x; s2)) for any noise-draw oracle.

    The draws are stacked along the paths: ``stochastic_grad(y)`` is grad f_s(y) for y of shape (n M, d),
    n = :func:`n_draws` (l), rows [j M, (j + 1) M) on draw s_{j+1}; ``full_grad()`` is grad f(x), (M, d) (only an
    algorithm that normalizes by it calls it); ``g`` may pass stochastic_grad at the stacked x.  Both directions come
    from one batched call of the oracle.  At l = 1 this is :func:`samsde.algorithms.optimizer_step`, bit for bit.
    """
    a1, a2 = svag_weights(l)
    if n_draws(l) == 1:
        return x - (eta / l) * update_direction(algorithm, x, rho, stochastic_grad, full_grad, g)
    stacked = torch.cat([x, x])

    def stacked_full() -> Tensor:
        full = full_grad()
        return torch.cat([full, full])

    d = update_direction(algorithm, stacked, rho, stochastic_grad, stacked_full, g)
    m = x.shape[0]
    return x - (eta / l) * (a1 * d[:m] + a2 * d[m:])


class SVAGRunner:
    """SVAG_l of one algorithm as a runner of :func:`samsde.simulate`: l substeps of size eta / l per discrete step.

    Additive noise: ``coupled`` (see the module doc); each substep takes U from the sum of n / l of the n increments
    the loop hands it per step (n = resolution x ``refinement``), so n must be a multiple of l (``refinement = l``
    makes it so at any resolution).  ``generator`` is V's stream (``make_generator(seed, ..., "svag", ...)``),
    needed for l > 1.  Mini-batch noise: the runner draws
    its two batches per substep from ``generator`` and gets no increments; at l = 1 it draws exactly the batches of a
    :class:`samsde.simulate.DiscreteRunner` on the same generator.
    """

    def __init__(
        self,
        task: Task,
        noise: NoiseModel,
        algorithm: str,
        eta: float,
        rho: float,
        l: int,
        name: str | None = None,
        generator: torch.Generator | None = None,
        refinement: int = 1,
    ):
        algorithm = get(algorithm)
        check_step_sizes(eta, rho)
        check_amplification(l)
        if not (isinstance(refinement, int) and refinement >= 1):
            raise ValueError(f"refinement must be an integer >= 1, got {refinement!r}")
        self.refinement = refinement
        self.task, self.noise, self.algorithm, self.eta, self.rho, self.l = task, noise, algorithm, eta, rho, l
        self.name = name or f"svag_{algorithm.name}_l{l}"
        self.dim_w = noise.dim_w
        self.minibatch = isinstance(noise, MiniBatch)
        self.coupled = not self.minibatch
        if generator is None and (self.minibatch or l > 1):
            what = "its batches" if self.minibatch else "the independent half V of its draws"
            raise ValueError(f"an SVAG runner needs a seeded generator for {what} (samsde.make_generator)")
        self.generator = generator
        self._known: KeptAt[Tensor] = KeptAt()

    def gradient_at(self, x: Tensor) -> Tensor:
        """grad f(x), kept for the first substep from this very tensor (the loop records observables there)."""
        return self._known.put(x, self.task.grad(x))

    def _full_gradient(self, x: Tensor) -> Tensor:
        g = self._known.take(x)
        return self.task.grad(x) if g is None else g

    def advance(self, x: Tensor, increments: Tensor | None, dt: float) -> Tensor:
        if self.minibatch:
            for _ in range(self.l):
                x = self.substep(x)
            return x
        n = increments.shape[0]
        if n % self.l:
            raise ValueError(
                f"SVAG with l = {self.l} needs a multiple of l Brownian increments per step, got {n}: "
                "choose the resolution a multiple of l"
            )
        # the increment of each substep (at l = 1 the sum DiscreteRunner takes, bit for bit: tests/test_svag.py)
        for dw in increments.reshape(self.l, n // self.l, *increments.shape[1:]).sum(1):
            x = self.substep(x, dw)
        return x

    def substep(self, x: Tensor, dw: Tensor | None = None) -> Tensor:
        """One substep x - (eta / l) D~ from x: on the Brownian increment ``dw`` (M, dim_w) of variance eta / l
        (additive noise), or on two batches drawn from the generator (mini-batch noise, ``dw`` None)."""
        if self.minibatch:
            m = x.shape[0]
            batch = torch.cat([self.noise.draw_batches(m, self.generator) for _ in range(n_draws(self.l))])
            return svag_step(
                self.algorithm, x, self.eta, self.rho, self.l,
                lambda y: self.task.grad(y, batch=batch), lambda: self._full_gradient(x),
            )  # fmt: skip
        full = self._full_gradient(x)
        # U = -(l / sqrt(eta)) S dW_sub ~ N(0, l Sigma); at l = 1 exactly DiscreteRunner's Z
        u = -self.noise.sqrt_apply(x, dw) / math.sqrt(self.eta) * self.l
        if n_draws(self.l) == 1:
            z, g = u, full + u
        else:
            xi = torch.randn(x.shape[0], self.dim_w, generator=self.generator, dtype=torch.float64).to(x.device)
            z = torch.cat(coupled_draws(u, math.sqrt(self.l) * self.noise.sqrt_apply(x, xi), self.l))
            g = torch.cat([full, full]) + z
        return svag_step(
            self.algorithm, x, self.eta, self.rho, self.l, lambda y: self.task.grad(y) + z, lambda: full, g
        )
