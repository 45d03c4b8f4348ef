"""Closed-form moments of the projected normal, for the SAM SDE under isotropic noise.

With Sigma = sigma^2 I the SAM SDE's inner expectations over Z ~ N(0, sigma^2 I), u = (g + Z)/|g + Z|, need no
Monte Carlo.  Write Y = (g + Z)/sigma ~ N(mu, I_d), mu = g/sigma, a = |mu|, so u = Y/|Y|:

    E[u]          = phi(a) mu,
    C = Cov(Z, u) = E[Z u^T] = sigma (phi(a) I + psi(a) mu^ mu^T),   mu^ = mu / a,

    phi(a) = kappa_d 1F1(1/2; d/2 + 1; -a^2/2),          kappa_d = Gamma((d+1)/2) / (sqrt(2) Gamma(d/2 + 1)),
    psi(a) = a phi'(a) = -a^2 kappa_d / (d + 2) 1F1(3/2; d/2 + 2; -a^2/2).

Derivation.  1/|y| = pi^(-1/2) int_0^inf t^(-1/2) exp(-t |y|^2) dt, and E[Y exp(-t |Y|^2)] is a Gaussian integral,
(1 + 2t)^(-d/2 - 1) exp(-a^2 t / (1 + 2t)) mu; the substitution s = 2t / (1 + 2t) turns the t-integral into Kummer's
integral of 1F1(1/2; d/2 + 1; -a^2/2), with the Beta(1/2, (d+1)/2) factor giving kappa_d.  For C: E[Z] = 0, and
Stein's lemma gives E[xi h(mu + xi)^T] = E[Dh(mu + xi)] = D_mu E[h(mu + xi)] for h(y) = y/|y|, so
C = sigma D_mu (phi(|mu|) mu) = sigma (phi I + a phi'(a) mu^ mu^T); C is symmetric.  Checks: a -> inf gives
E[u] -> mu^ and C -> (sigma / a) (I - mu^ mu^T), the Jacobian of the normalisation at g; a = 0 gives E[u] = 0 and
C = sigma kappa_d I.  (Tests compare both against a large seeded Monte Carlo.)

Evaluation.  phi and psi are functions of a alone for a given d; scipy's hyp1f1 is accurate (<= 2e-11 relative
against mpmath up to d = 20000) but ~0.5 us per call, as much as a whole small SDE step for thousands of paths.
So each d gets a table, built once from the reference (scipy; above d = 20000 a quadrature: last paragraph), of
f(t) = phi / (1 - t) and psi / (1 - t) on a uniform grid of t = a / (a + sqrt(d)) in [0, 1] (both are smooth and
bounded there; the limits at t = 1, a = inf, are +-1/sqrt(d)), and the simulation interpolates it with cubic
Lagrange polynomials (stored per interval as monomial coefficients), batched over paths, in numpy.  Interpolation
error against the reference: <= 6e-12 relative to phi up to d = 5000 (``test_projected_normal`` allows 1e-10).

The reference above d = 20000 (``SCIPY_MAX_DIM``): there scipy's hyp1f1 returns NaN at isolated arguments near
a = sqrt(d) (from d ~ 64,000; mpmath's series does not converge there either), so phi and psi come from Kummer's
integral with s = w^2, whose prefactors combine to sqrt(2/pi):
    phi(a) = sqrt(2/pi) int_0^1 (1 - w^2)^((d-1)/2) exp(-a^2 w^2 / 2) dw,
    psi(a) = -a^2 sqrt(2/pi) int_0^1 w^2 (1 - w^2)^((d-1)/2) exp(-a^2 w^2 / 2) dw,
by Gauss-Legendre quadrature on [0, W], W^2 = 2 * 45 / (a^2 + d - 1), beyond which the integrand is below e^-45 of
its peak (at d > 20000, W < 0.07: a smooth bump far from the branch point w = 1).  It agrees with mpmath's adaptive
quadrature of the same integrals at 30 digits to 1e-14 relative at d = 2000 - 114,689 (scipy's series: 7e-13 at
d = 2000, 3e-12 at 20000) and with scipy to 2e-11 up to d = 20000 (``test_projected_normal``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import special
from torch import Tensor

TABLE_POINTS = 4096  # grid intervals in t


def kappa(d: int) -> float:
    return math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2 + 1)) / math.sqrt(2)


SCIPY_MAX_DIM = 20000  # the largest d at which scipy's hyp1f1 was checked against mpmath (module docstring)
QUADRATURE_NODES = 96
_TAIL = 45.0  # the quadrature's interval ends where the integrand is e^-_TAIL of its peak


def phi_psi_quadrature(a: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """phi(a), psi(a) from Kummer's integral by Gauss-Legendre quadrature (module docstring; float64 numpy)."""
    a = np.asarray(a, dtype=np.float64)
    a2 = (a * a)[..., None]
    width = np.sqrt(np.minimum(1.0, 2 * _TAIL / (a2 + max(d - 1, 1))))  # W, (..., 1)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)  # on [-1, 1]
    w = width * (nodes + 1) / 2
    w2 = w * w
    f = np.exp((d - 1) / 2 * np.log1p(-w2) - a2 * w2 / 2) * (weights * width / 2)
    scale = math.sqrt(2 / math.pi)
    return scale * f.sum(-1), -a * a * scale * (f * w2).sum(-1)


def phi_psi_reference(a: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """phi(a), psi(a) (float64 numpy; the reference the tables are built from): scipy's hyp1f1 up to
    ``SCIPY_MAX_DIM``, the quadrature of Kummer's integral above."""
    if d < 1:
        raise ValueError(f"the dimension d must be >= 1, got {d}")
    if d > SCIPY_MAX_DIM:
        return phi_psi_quadrature(a, d)
    a = np.asarray(a, dtype=np.float64)
    x = -0.5 * a * a
    k = kappa(d)
    phi = k * special.hyp1f1(0.5, d / 2 + 1, x)
    psi = -a * a * k / (d + 2) * special.hyp1f1(1.5, d / 2 + 2, x)
    return phi, psi


def _scale(d: int) -> float:
    return math.sqrt(d)


def _table(d: int) -> np.ndarray:
    """(TABLE_POINTS + 3, 2): phi/(1-t) and psi/(1-t) on t_j = j / TABLE_POINTS, j = -1 ... TABLE_POINTS + 1.

    The two extra points outside [0, 1] let every interval use the same 4-point stencil: phi is even in a and
    psi too, so the point at t = -h is phi, psi at |a(-h)| = c h / (1 + h) divided by 1 - t = 1 + h; the points
    at t = 1 and 1 + h come from the large-a expansions.
    """
    n, c, h = TABLE_POINTS, _scale(d), 1.0 / TABLE_POINTS
    t = np.arange(0, n, dtype=np.float64) / n  # t < 1: a finite
    a = c * t / (1 - t)
    phi, psi = phi_psi_reference(a, d)
    f = np.stack([phi / (1 - t), psi / (1 - t)])
    if not np.all(np.isfinite(f)):
        raise FloatingPointError(f"projected-normal table for d = {d} is not finite")
    # beyond t = 1 the large-a expansions phi = 1/a - (d-1)/(2 a^3) + O(a^-5), psi = a phi' = -1/a + 3(d-1)/(2 a^3),
    # with 1/a = (1 - t)/(c t): f(1) = +-1/c and the ghost point f(1 + h), exact to O(h^4)
    end = np.array([[1 / c], [-1 / c]])
    # at t = -h, a = -c h / (1 + h): phi(-a) = phi(a) and psi(-a) = psi(a); divided by 1 - t = 1 + h
    a_m = c * h / (1 + h)
    phi_m, psi_m = phi_psi_reference(np.array([a_m]), d)
    start = np.stack([phi_m, psi_m]) / (1 + h)
    h3 = (d - 1) * h * h / (2 * c**3 * (1 + h) ** 3)
    ghost = np.array([[1 / (c * (1 + h)) - h3], [-1 / (c * (1 + h)) + 3 * h3]])
    return np.concatenate([start, f, end, ghost], axis=1).T


# the cubic through f(t_j-1), f(t_j), f(t_j+1), f(t_j+2) as a polynomial in w = (t - t_j)/h, coefficients of
# w^0 ... w^3 (rows: the four nodes, from the Lagrange basis polynomials)
_LAGRANGE_TO_MONOMIAL = np.array(
    [
        [0.0, -1 / 3, 1 / 2, -1 / 6],
        [1.0, -1 / 2, -1.0, 1 / 2],
        [0.0, 1.0, 1 / 2, -1 / 2],
        [0.0, -1 / 6, 0.0, 1 / 6],
    ]
)


@functools.lru_cache(maxsize=16)
def _coefficients(d: int) -> np.ndarray:
    """(TABLE_POINTS, 4, 2): per interval [t_j, t_j+1], the cubic's coefficients of w^0 ... w^3 for (phi, psi).

    Built once per d (and cached) from the table of f at the grid points."""
    f = _table(d)  # (n + 3, 2)
    n = TABLE_POINTS
    stencil = np.stack([f[k : k + n] for k in range(4)], axis=-1)  # (n, 2, 4): nodes j-1 ... j+2
    return np.ascontiguousarray((stencil @ _LAGRANGE_TO_MONOMIAL).transpose(0, 2, 1))


def _interpolate(x: np.ndarray, d: int) -> np.ndarray:
    """(phi, psi) at a = x (numpy, float64) along a new last axis: t = a/(a + c), the interval j and the offset w
    of t in it, the interval's cubic in w (powers of w times its coefficients), times 1 - t = c/(a + c)."""
    n, c = TABLE_POINTS, _scale(d)
    one_minus_t = c / (x + c)  # not 1 - t: no cancellation as a -> inf
    s = n - n * one_minus_t  # t n
    j = np.minimum(np.floor(s), n - 1)
    powers = np.power((s - j)[..., None, None], _POWERS)  # (..., 1, 4): w^0 ... w^3, w in [0, 1]
    f = np.matmul(powers, _coefficients(d)[j.astype(np.intp)])[..., 0, :]  # (..., 2)
    return f * one_minus_t[..., None]


_POWERS = np.arange(4.0)


def _to_numpy(t: Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def phi_psi(a: Tensor, d: int) -> tuple[Tensor, Tensor]:
    """phi(a), psi(a) for a tensor a >= 0 of any shape, on a's device and in its dtype."""
    f = _interpolate(_to_numpy(a), d)
    return (torch.from_numpy(np.ascontiguousarray(f[..., i])).to(device=a.device, dtype=a.dtype) for i in (0, 1))


def sam_coefficients(norm: Tensor, sigma: float, d: int) -> Tensor:
    """The SAM SDE's moments as multiples of g and I, per path, from |g| (M, 1): columns (M, 3)

        mean  = phi / sigma              E[u] = mean g
        iso   = sigma phi                C = iso I + outer g g^T
        outer = psi / (sigma a^2)        (its limit -kappa_d / ((d + 2) sigma) at a = 0)

    with a = |g| / sigma.  One numpy pass on the CPU: the inputs are one number per path, and numpy's per-call
    overhead is a fraction of torch's, which dominates the SDE step at small path counts.
    """
    a = _to_numpy(norm) / sigma  # (M, 1)
    f = _interpolate(a, d)[..., 0, :]  # (M, 2): phi, psi
    a2 = a * a
    outer = np.full_like(a, -kappa(d) / (d + 2))
    np.divide(f[:, 1:], a2, out=outer, where=a2 > 0)
    out = np.concatenate([f[:, :1], f[:, :1], outer], axis=-1) * np.array([1 / sigma, sigma, 1 / sigma])
    return torch.from_numpy(out).to(device=norm.device, dtype=norm.dtype)
