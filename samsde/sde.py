"""The SDE model of any registered algorithm (Ito, time t = k eta), and its Euler-Maruyama step.

    dX = b(X) dt + sqrt(eta) B(X) dW

The drift b comes from one algorithm and the diffusion B from another (the same one: the algorithm's own SDE; SGD's:
the drift-only ablation); each algorithm's formulas live in its module under ``samsde.algorithms`` (for example
USAM: b = -(g + rho H g) with g = grad f, B B^T = Sigma + rho (H Sigma + Sigma H)).  This module holds what they share:
the linearization at a point and, for an algorithm that ``needs_inner_moments`` (SAM:
u = (g + Z)/|g + Z|, Z ~ N(0, Sigma)), the moments E[u] and C = Cov(Z, u).
The SAM SDE's moments E[u] and C (``sam_moments``): ``closed_form`` for isotropic noise Sigma = sigma^2 I
(samsde.projected_normal: E[u] = (phi/sigma) g, C = sigma phi I + psi/(sigma a^2) g g^T with a = |g|/sigma, two
Hessian-vector products per step, H g and H dW), or ``monte_carlo``, an inner Monte Carlo of size K =
``inner_samples`` (any additive Gaussian noise); ``auto`` (default) takes the closed form whenever the noise is
isotropic.
Two ways to apply B to dW:
- ``exact``: B = (B B^T)^(1/2) by a batched eigendecomposition; negative eigenvalues (B B^T is only PSD up to
  O(rho^2)) are clamped to zero and counted in ``SDEModel.clamp_count``.
- ``first_order``: matrix-free, exact to first order in rho, one or two Hessian-vector products per step
  (``Algorithm.diffusion``; e.g. USAM: B dW = (I + rho H) S dW with S S^T = Sigma).
The paper's mini-batch SDE (``samsde.minibatch``) also has ``sampled`` and ``linear`` (USAM, DNSAM: the noise-free
root, no inner sample), and ``auto``: ``linear`` where the algorithm has that root, else ``sampled``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from samsde import minibatch
from samsde._kept import KeptAt
from samsde.algorithms import check_step_sizes, get, safe_inverse_norm
from samsde.noise import MiniBatch, NoiseModel
from samsde.projected_normal import sam_coefficients
from samsde.tasks import Linearization, Task
from samsde.tasks.base import GradientOnly

DIFFUSION_MODES = ("first_order", "exact", "sampled", "linear", "auto")
#: the modes of the paper's mini-batch SDE only (samsde.minibatch)
MINIBATCH_ONLY_MODES = ("sampled", "linear", "auto")
#: the SDE on mini-batch noise: the paper's (samsde.minibatch), or section 3's additive-noise formulas with the
#: mini-batch Sigma swapped in (an ablation)
MINIBATCH_FORMULAS = ("paper", "additive")


@dataclass
class InnerSample:
    """The SAM SDE's inner Monte Carlo at one point: K draws Z_k and u_k = (g + Z_k)/|g + Z_k| per path.

    The (K, M, d) draws are kept in float32 (see ``NoiseModel.sample``): the estimates' Monte Carlo error is
    ~1/sqrt(K), far above float32 rounding, and the passes over the draws, which dominate the SAM SDE's step, move
    half the bytes.  Everything handed back (``mean_u``, C v, C^T v, C) is in the precision of the point, float64.

    The covariance C = Cov(Z, u) is applied without centring the draws (two fewer passes over them):
        C v = (1/(K-1)) sum_k (Z_k - Zbar) ((u_k - ubar) . v) = (1/(K-1)) [sum_k Z_k (u_k . v) - K Zbar (ubar . v)].
    """

    mean_u: Tensor  # (M, d), float64
    z: Tensor | None = None  # (K, M, d), float32
    u: Tensor | None = None  # (K, M, d), float32
    mean_z: Tensor | None = None  # (M, d), float32
    mean_u32: Tensor | None = None  # (M, d), float32

    def _apply(self, left: Tensor, right: Tensor, mean_left: Tensor, mean_right: Tensor, v: Tensor) -> Tensor:
        k = left.shape[0]
        v32 = v.to(left.dtype)
        # elementwise products and sums: 1.7-4x faster than the equivalent einsums (many tiny matmuls) at d = 10-257
        total = (left * (right * v32).sum(-1, keepdim=True)).sum(0)
        return ((total - k * mean_left * (mean_right * v32).sum(-1, keepdim=True)) / (k - 1)).to(v.dtype)

    def cov_apply(self, v: Tensor) -> Tensor:
        """C v, the unbiased sample estimate, O(K M d)."""
        return self._apply(self.z, self.u, self.mean_z, self.mean_u32, v)

    def cov_transpose_apply(self, v: Tensor) -> Tensor:
        """C^T v = E[(u - Eu) ((Z - EZ) . v)]."""
        return self._apply(self.u, self.z, self.mean_u32, self.mean_z, v)

    def h_mean(self, lin: Linearization) -> Tensor:
        """H E[u]."""
        return lin.hvp(self.mean_u)

    def correction(self, lin: Linearization, dw: Tensor) -> Tensor:
        """C H dW + H C^T dW, the first-order SAM diffusion's correction (three Hessian-vector products in all)."""
        return self.cov_apply(lin.hvp(dw)) + lin.hvp(self.cov_transpose_apply(dw))

    def cov_matrix(self) -> Tensor:
        k = self.z.shape[0]
        total = torch.einsum("kmi,kmj->mij", self.z.double(), self.u.double())
        outer = self.mean_z.double().unsqueeze(-1) * self.mean_u.unsqueeze(-2)
        return (total - k * outer) / (k - 1)


class ClosedFormMoments:
    """E[u] and C = Cov(Z, u) of the SAM SDE under isotropic noise Sigma = sigma^2 I, exactly (no inner sample).

    With a = |g|/sigma, from :mod:`samsde.projected_normal` (phi, psi functions of a; ``sam_coefficients``):
        E[u] = (phi / sigma) g,    C = C^T = sigma phi I + (psi / (sigma a^2)) g g^T.
    Every product the SDE needs is then built from two Hessian-vector products, H g (kept: the drift's
    H E[u] = (phi / sigma) H g and the diffusion share it) and H dW:
        C H dW + H C^T dW = 2 sigma phi H dW + (psi / (sigma a^2)) (g (g . H dW) + (g . dW) H g).
    """

    def __init__(self, g: Tensor, sigma: float):
        self.g = g
        coef = sam_coefficients(torch.linalg.vector_norm(g, dim=-1, keepdim=True), sigma, g.shape[-1])
        self.mean, self.iso, self.outer = coef[:, 0:1], coef[:, 1:2], coef[:, 2:3]  # (M, 1) each
        self._hg: Tensor | None = None

    @property
    def mean_u(self) -> Tensor:
        return self.mean * self.g

    def _h_g(self, lin: Linearization) -> Tensor:
        if self._hg is None:
            self._hg = lin.hvp(self.g)
        return self._hg

    def h_mean(self, lin: Linearization) -> Tensor:
        return self._h_g(lin) * self.mean

    def cov_apply(self, v: Tensor) -> Tensor:
        """C v (= C^T v)."""
        along = torch.linalg.vecdot(self.g, v).unsqueeze_(-1).mul_(self.outer)
        return (v * self.iso).addcmul_(self.g, along)

    cov_transpose_apply = cov_apply

    def correction(self, lin: Linearization, dw: Tensor) -> Tensor:
        h_dw = lin.hvp(dw)
        along_h_dw = torch.linalg.vecdot(self.g, h_dw).unsqueeze_(-1).mul_(self.outer)
        along_dw = torch.linalg.vecdot(self.g, dw).unsqueeze_(-1).mul_(self.outer)
        out = h_dw.mul_(self.iso).mul_(2)  # (h_dw is this method's own tensor)
        out.addcmul_(self.g, along_h_dw)
        return out.addcmul_(self._h_g(lin), along_dw)

    def cov_matrix(self) -> Tensor:
        d = self.g.shape[-1]
        eye = torch.eye(d, dtype=self.g.dtype, device=self.g.device)
        outer = self.g.unsqueeze(-1) * self.g.unsqueeze(-2)
        return self.iso.unsqueeze(-1) * eye + self.outer.unsqueeze(-1) * outer


SAM_MOMENTS = ("auto", "closed_form", "monte_carlo")


@dataclass
class Point:
    """Everything the coefficients at one point X share: the linearization and, for SAM, the inner sample."""

    x: Tensor
    lin: Linearization
    inner: InnerSample | ClosedFormMoments | None

    @property
    def grad(self) -> Tensor:
        return self.lin.grad


class SDEModel:
    """An SDE with the drift of algorithm ``drift`` and the diffusion of algorithm ``diffusion``."""

    def __init__(
        self,
        task: Task,
        noise: NoiseModel,
        eta: float,
        rho: float,
        drift: str,
        diffusion: str | None = None,
        mode: str = "first_order",
        inner_samples: int = 64,
        generator: torch.Generator | None = None,
        sam_moments: str = "auto",
        minibatch_formula: str = "paper",
        inner_hold: int = 1,
    ):
        diffusion = drift if diffusion is None else diffusion
        drift_algorithm, diffusion_algorithm = get(drift), get(diffusion)
        check_step_sizes(eta, rho)
        if mode not in DIFFUSION_MODES:
            raise ValueError(f"unknown diffusion mode {mode!r}; known modes: {list(DIFFUSION_MODES)}")
        if inner_samples < 2:
            raise ValueError(f"inner_samples must be >= 2, got {inner_samples}")
        if sam_moments not in SAM_MOMENTS:
            raise ValueError(f"unknown sam_moments {sam_moments!r}; known: {list(SAM_MOMENTS)}")
        if minibatch_formula not in MINIBATCH_FORMULAS:
            raise ValueError(f"unknown minibatch_formula {minibatch_formula!r}; known: {list(MINIBATCH_FORMULAS)}")
        self.task, self.noise, self.eta, self.rho = task, noise, eta, rho
        self.drift_algorithm, self.diffusion_algorithm = drift_algorithm, diffusion_algorithm
        # the paper's mini-batch SDE (samsde.minibatch) unless the additive-noise formula is asked for by name
        self.minibatch = isinstance(noise, MiniBatch) and not noise.is_zero and minibatch_formula == "paper"
        self.minibatch_formula = minibatch_formula if isinstance(noise, MiniBatch) else None
        if self.minibatch:
            self._init_minibatch(mode, inner_samples, generator, inner_hold)
            return
        if mode in MINIBATCH_ONLY_MODES:
            raise ValueError(f"diffusion mode {mode!r} is the mini-batch SDE's (minibatch noise, formula 'paper')")
        needs_inner = (
            drift_algorithm.needs_inner_moments or diffusion_algorithm.needs_inner_moments
        ) and not noise.is_zero
        isotropic = noise.isotropic_sigma is not None
        if sam_moments == "auto":
            sam_moments = "closed_form" if isotropic else "monte_carlo"
        if needs_inner and sam_moments == "closed_form" and not isotropic:
            raise ValueError(
                f"sam_moments 'closed_form' needs isotropic noise (Sigma = sigma^2 I), not {noise.name!r} noise; "
                "use 'monte_carlo'"
            )
        if needs_inner and sam_moments == "monte_carlo" and generator is None:
            raise ValueError("the SAM SDE's inner Monte Carlo needs a seeded generator (samsde.make_generator)")
        if needs_inner and not noise.additive:
            raise ValueError(
                "the additive-noise formula of the SAM SDE needs Gaussian noise: on minibatch noise use "
                "minibatch_formula='paper' (the paper's mini-batch SDE)"
            )
        if diffusion_algorithm.first_order_needs_isotropic and mode == "first_order" and noise.isotropic_sigma is None:
            raise ValueError(
                f"first_order {diffusion_algorithm.label} diffusion needs isotropic noise (Sigma = sigma^2 I); "
                "use mode='exact'"
            )
        self._init_common(mode, inner_samples, generator)
        self.sam_moments = sam_moments  # resolved: closed_form | monte_carlo
        self.needs_inner = needs_inner

    needs_hessian = True  # whether a point needs the full-batch Hessian-vector product (see _init_minibatch)

    def _init_common(self, mode: str, inner_samples: int, generator: torch.Generator | None) -> None:
        self.drift_name, self.diffusion_name = self.drift_algorithm.name, self.diffusion_algorithm.name
        self.mode = mode
        self.inner_samples = inner_samples
        self.generator = generator
        self.clamp_count = 0  # negative eigenvalues of B B^T clamped (exact mode)
        self.factorization_count = 0  # eigenvalues examined (exact mode)
        self._prepared: KeptAt[Point] = KeptAt()  # see prepare()

    def _init_minibatch(self, mode: str, inner_samples: int, generator: torch.Generator | None, hold: int) -> None:
        """The paper's mini-batch SDE: the inner sample draws batches for the algorithm that takes an ascent step."""
        ascent = [a for a in (self.drift_algorithm, self.diffusion_algorithm) if a.perturbs]
        if len({a.name for a in ascent}) > 1:
            raise ValueError(
                f"a mini-batch SDE samples one algorithm's ascent step: drift {self.drift_algorithm.name!r} and "
                f"diffusion {self.diffusion_algorithm.name!r} both take one"
            )
        self.sampled_algorithm = ascent[0] if ascent else None
        self._init_common(mode, inner_samples, generator)
        self.mode = mode = minibatch.resolve_mode(self, mode)  # auto: linear, or sampled for SAM
        # the full-batch H v: USAM's and DNSAM's exact drift term and linear root; SAM's comes from the batches alone
        linear_root = mode == "linear" and self.diffusion_algorithm.perturbs
        self.needs_hessian = self.rho > 0 and (
            (self.drift_algorithm.perturbs and self.drift_algorithm.has_minibatch_mean) or linear_root
        )
        self.sam_moments = None
        self.needs_inner = minibatch.needs_sample(self)
        if self.needs_inner and generator is None:
            raise ValueError("the mini-batch SDE's inner sample needs a seeded generator (samsde.make_generator)")
        if mode == "sampled" and inner_samples > self.noise.dim_w:
            raise ValueError(
                f"the sampled diffusion takes its {inner_samples} normals from the N = {self.noise.dim_w} Brownian "
                "coordinates: inner_samples must not exceed the data set size"
            )
        self.batch_draws = minibatch.BatchDraws(generator, hold) if self.needs_inner else None

    @property
    def name(self) -> str:
        return (
            self.drift_name
            if self.diffusion_name == self.drift_name
            else f"{self.drift_name}+{self.diffusion_name}_noise"
        )

    @property
    def dim_w(self) -> int:
        return self.task.dim if self.mode == "exact" else self.noise.dim_w

    def point(self, x: Tensor) -> Point:
        lin = self.task.linearize(x) if self.needs_hessian else GradientOnly(self.task.grad(x))
        inner = self._inner_sample(x, lin) if self.needs_inner else None
        return Point(x, lin, inner)

    def prepare(self, x: Tensor) -> Point:
        """The point at x, kept for the next :meth:`em_step` from this very tensor (unmodified), which then reuses it.

        The simulation loop records observables at the state an SDE path is about to step from: it asks for the
        gradient here, so the linearization (and the SAM inner sample, drawn in the same order from the model's
        generator as it would be by the step) is computed once, not twice.
        """
        return self._prepared.put(x, self.point(x))

    def _take_point(self, x: Tensor) -> Point:
        p = self._prepared.take(x)
        return self.point(x) if p is None else p

    def _inner_sample(self, x: Tensor, lin: Linearization) -> InnerSample | ClosedFormMoments | minibatch.BatchSample:
        if self.minibatch:
            return minibatch.sample(self, Point(x, lin, None))
        g = lin.grad
        if self.sam_moments == "closed_form":
            return ClosedFormMoments(g, self.noise.isotropic_sigma)
        z = self.noise.sample(x, self.inner_samples, self.generator)  # (K, M, d), float32
        u = z + g.to(z.dtype)
        u.mul_(safe_inverse_norm(u))  # in place: u = (g + Z) / |g + Z|
        mean_u32 = u.mean(0)
        if not self.diffusion_algorithm.needs_inner_moments:
            return InnerSample(mean_u32.to(x.dtype))  # only the drift uses the sample: E[u] is all it needs
        return InnerSample(mean_u32.to(x.dtype), z, u, z.mean(0), mean_u32)

    def drift(self, p: Point) -> Tensor:
        if self.minibatch:
            return minibatch.drift(self, p)
        return self.drift_algorithm.drift(self, p)

    def diffuse(self, p: Point, dw: Tensor) -> Tensor:
        """B(X) dW (without the factor sqrt(eta))."""
        if self.noise.is_zero:
            return torch.zeros_like(p.x)
        if self.mode == "exact":
            return (self._exact_sqrt(p) @ dw.unsqueeze(-1)).squeeze(-1)
        if self.minibatch:
            return minibatch.diffusion(self, p, dw)
        return self.diffusion_algorithm.diffusion(self, p, dw)

    def _exact_sqrt(self, p: Point) -> Tensor:
        sigma = self.noise.covariance(p.x)
        if self.minibatch:
            bbt = minibatch.diffusion_matrix(self, p, sigma)
        else:
            bbt = self.diffusion_algorithm.diffusion_matrix(self, p, sigma)
        bbt = (bbt + bbt.transpose(-1, -2)) / 2
        evals, evecs = torch.linalg.eigh(bbt)
        negative = evals < 0
        self.clamp_count += int(negative.sum())
        self.factorization_count += evals.numel()
        return (evecs * evals.clamp_min(0).sqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)

    def coefficients_at(self, x: Tensor) -> Point:
        """The point a solver evaluates b and B at: the one :meth:`prepare` kept for this very x, else a new one."""
        return self._take_point(x)

    def em_step(self, x: Tensor, dw: Tensor, dt: float) -> Tensor:
        """One Euler-Maruyama step (:func:`samsde.solvers.euler_maruyama_step`)."""
        from samsde.solvers import euler_maruyama_step

        return euler_maruyama_step(self, x, dw, dt)
