"""Matrix-free sharpness measures for any PyTorch model and loss.

Every measure in this module acts on a *loss closure over a flat parameter
vector*: a callable ``loss(theta) -> scalar`` where ``theta`` is a 1-D tensor
holding all trainable parameters.  :func:`flat_loss_fn` builds such a closure
from an ``nn.Module``, a loss function and a data batch, so the same code
measures the sharpness of a toy quadratic and of a neural network.

Curvature is only ever accessed through Hessian-vector products
``H v = d/dtheta (grad L(theta) . v)`` computed by double backward, so the
``d x d`` Hessian is never formed.

Measures provided (``H`` is the Hessian of ``L`` at ``theta``, ``d`` the
number of parameters):

* :func:`lambda_max`, :func:`top_k_spectrum`: extreme eigenvalues of ``H`` by
  Lanczos with full reorthogonalization.
* :func:`spectral_density`: stochastic Lanczos quadrature (SLQ) estimate of the
  Gaussian-smoothed eigenvalue density of ``H``.
* :func:`hutchinson_trace`: ``tr(H) ~ mean_i z_i^T H z_i`` with Rademacher
  ``z_i``.
* :func:`worst_direction_sharpness`:
  ``max_{||e|| <= rho} L(theta + e) - L(theta)``.
* :func:`ascent_direction_sharpness`:
  ``L(theta + rho g / ||g||) - L(theta)`` with ``g = grad L(theta)``.
* :func:`ascent_alignment`: ``|cos|`` between SAM's ascent direction ``g / ||g||``
  and a given direction (e.g. the top eigenvector from :func:`lambda_max`).
* :func:`average_direction_sharpness`:
  ``E_{e ~ N(0, rho^2 I / d)} L(theta + e) - L(theta)``.
* :func:`keskar_sharpness`: the worst-direction sharpness normalised by
  ``1 + L(theta)`` (Keskar et al., 2017), over an L2 ball.
* :func:`interpolation_losses`: ``L((1 - a) theta_a + a theta_b)`` on a grid
  of ``a``.

Random quantities take an optional ``torch.Generator`` so results are
reproducible without touching the global RNG state.

Modules: ``flat`` (the flat-parameter view of a model), ``curvature``
(measures through H v: Lanczos, SLQ, Hutchinson), ``perturbation`` (measures
through loss values at perturbed points), ``_core`` (checks, H v, probes).
"""

from __future__ import annotations

from samsde.sharpness._core import LossClosure, hvp
from samsde.sharpness.curvature import (
    EigenPair,
    SpectralDensity,
    hutchinson_trace,
    lambda_max,
    spectral_density,
    top_k_spectrum,
)
from samsde.sharpness.flat import flat_loss_fn, get_flat_params, set_flat_params
from samsde.sharpness.perturbation import (
    ascent_alignment,
    ascent_direction_sharpness,
    average_direction_sharpness,
    interpolation_losses,
    keskar_sharpness,
    worst_direction_sharpness,
)
from samsde.stats import Estimate

__all__ = [
    "EigenPair",
    "Estimate",
    "LossClosure",
    "SpectralDensity",
    "ascent_alignment",
    "ascent_direction_sharpness",
    "average_direction_sharpness",
    "flat_loss_fn",
    "get_flat_params",
    "hutchinson_trace",
    "hvp",
    "interpolation_losses",
    "keskar_sharpness",
    "lambda_max",
    "set_flat_params",
    "spectral_density",
    "top_k_spectrum",
    "worst_direction_sharpness",
]
