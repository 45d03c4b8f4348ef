"""Closed forms on the quadratic f(x) = x^T H x / 2 with Sigma = sigma^2 I, per eigenvalue lambda of H.

USAM SDE: an Ornstein-Uhlenbeck process per eigen-direction,
    dX = -a X dt + sqrt(eta) b dW,  a = lambda (1 + rho lambda),  b^2 = sigma^2 (1 + 2 rho lambda)  (exact diffusion)
with mean e^{-a t} x0 and variance eta b^2 (1 - e^{-2 a t}) / (2 a), which tends to
    eta sigma^2 (1 + 2 rho lambda) / (2 lambda (1 + rho lambda)).
The first_order diffusion (I + rho H) sigma dW has b^2 = sigma^2 (1 + rho lambda)^2 instead.
Discrete USAM: x+ = c x - eta (1 + rho lambda) z, c = 1 - eta lambda (1 + rho lambda), stationary variance
    eta^2 (1 + rho lambda)^2 sigma^2 / (1 - c^2)   (when |c| < 1).
rho = 0 gives SGD.  E f = sum_i lambda_i Var_i / 2 at stationarity (the mean decays to 0).
"""

from __future__ import annotations

import numpy as np


def _lam(eigenvalues) -> np.ndarray:
    return np.asarray(eigenvalues, dtype=float)


def usam_drift_rate(eigenvalues, rho: float) -> np.ndarray:
    """a = lambda (1 + rho lambda): the USAM SDE's (and gradient flow on f_U's) contraction rate per direction."""
    lam = _lam(eigenvalues)
    return lam * (1 + rho * lam)


def usam_diffusion_variance(eigenvalues, rho: float, sigma: float, mode: str = "exact") -> np.ndarray:
    """b^2 per direction: sigma^2 (1 + 2 rho lambda) (exact) or sigma^2 (1 + rho lambda)^2 (first_order)."""
    lam = _lam(eigenvalues)
    if mode == "exact":
        return sigma**2 * np.clip(1 + 2 * rho * lam, 0, None)
    if mode == "first_order":
        return sigma**2 * (1 + rho * lam) ** 2
    raise ValueError(f"unknown diffusion mode {mode!r}")


def ou_moments(eigenvalues, x0_eigen, t: float, eta: float, rho: float, sigma: float, mode: str = "exact"):
    """Mean and variance per eigen-direction at time t of the USAM SDE (rho = 0: SGD SDE) started at x0."""
    a = usam_drift_rate(eigenvalues, rho)
    b2 = usam_diffusion_variance(eigenvalues, rho, sigma, mode)
    mean = np.exp(-a * t) * np.asarray(x0_eigen, dtype=float)
    # (1 - e^{-2at}) / (2a) -> t as a -> 0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(np.abs(a) > 1e-12, -np.expm1(-2 * a * t) / (2 * a), t)
    return mean, eta * b2 * factor


def usam_sde_stationary_variance(eigenvalues, eta: float, rho: float, sigma: float) -> np.ndarray:
    """eta sigma^2 (1 + 2 rho lambda) / (2 lambda (1 + rho lambda)) per direction (lambda > 0)."""
    lam = _lam(eigenvalues)
    return eta * sigma**2 * (1 + 2 * rho * lam) / (2 * lam * (1 + rho * lam))


def usam_sde_stationary_loss(eigenvalues, eta: float, rho: float, sigma: float) -> float:
    """E f(X_inf) = (eta sigma^2 / 4) sum_i (1 + 2 rho lambda_i) / (1 + rho lambda_i)."""
    lam = _lam(eigenvalues)
    return float(eta * sigma**2 / 4 * np.sum((1 + 2 * rho * lam) / (1 + rho * lam)))


def sgd_sde_stationary_loss(eigenvalues, eta: float, sigma: float) -> float:
    """E f(X_inf) = eta sigma^2 d / 4 for the SGD SDE on a positive definite quadratic."""
    return float(eta * sigma**2 * len(_lam(eigenvalues)) / 4)


def usam_discrete_stationary_variance(eigenvalues, eta: float, rho: float, sigma: float) -> np.ndarray:
    """Exact stationary variance of the discrete USAM recursion per direction (inf where it is unstable)."""
    lam = _lam(eigenvalues)
    c = 1 - eta * lam * (1 + rho * lam)
    with np.errstate(divide="ignore"):
        var = eta**2 * (1 + rho * lam) ** 2 * sigma**2 / (1 - c**2)
    return np.where(np.abs(c) < 1, var, np.inf)


def usam_discrete_stationary_loss(eigenvalues, eta: float, rho: float, sigma: float) -> float:
    lam = _lam(eigenvalues)
    return float(np.sum(lam * usam_discrete_stationary_variance(lam, eta, rho, sigma)) / 2)


def usam_saddle_threshold(eigenvalue: float) -> float:
    """USAM drift along a direction with lambda < 0 is -lambda (1 + rho lambda) x: it attracts iff rho > 1/|lambda|."""
    if eigenvalue >= 0:
        raise ValueError(f"a saddle threshold needs a negative eigenvalue, got {eigenvalue}")
    return 1.0 / abs(eigenvalue)


def sam_saddle_speed(eigenvalue: float, rho: float) -> float:
    """Full-batch SAM/DNSAM near a saddle: rho H^2 x / |H x| moves toward it at speed ~ rho |lambda| (1-D)."""
    return rho * abs(eigenvalue)
