"""DNSAM (deterministically normalized SAM): the ascent step is normalized by the full-batch gradient.

    x+ = x - eta grad f_gamma(x + rho g / |grad f(x)|)
    dX = -(grad f + rho H grad f / |grad f|) dt + sqrt(eta) (Sigma + (rho/|grad f|) (H Sigma + Sigma H))^(1/2) dW
The drift is -grad f_S with f_S = f + rho |grad f|; the first-order diffusion is (I + (rho/|grad f|) H) Sigma^(1/2) dW.
Its noise grows without bound as |grad f| -> 0: it cannot settle at a minimizer.
Under mini-batch noise the drift term is E[H_gamma g_gamma] / |grad f|, exactly, and the linear root is USAM's over
|grad f| (samsde.minibatch).
"""

from __future__ import annotations

from samsde.algorithms.base import Algorithm, dense_hessian, safe_inverse_norm, sharpened, symmetrized
from samsde.minibatch import batch_curvature_mean, linear_root


def _factor(model, p):
    """rho / |grad f| per path, (M, 1)."""
    return model.rho * safe_inverse_norm(p.grad)


class DNSAM(Algorithm):
    name = "dnsam"
    label = "DNSAM"
    color = "#e7298a"

    def perturbation(self, g, full_grad, rho):
        return rho * safe_inverse_norm(full_grad()) * g

    def drift(self, model, p):
        return -(p.grad + _factor(model, p) * p.lin.hvp(p.grad))

    def diffusion(self, model, p, dw):
        return sharpened(_factor(model, p), p, model.noise.sqrt_apply(p.x, dw))

    def diffusion_matrix(self, model, p, sigma):
        return sigma + _factor(model, p).unsqueeze(-1) * symmetrized(dense_hessian(model, p), sigma)

    def minibatch_mean(self, model, p):
        return batch_curvature_mean(model, p) * safe_inverse_norm(p.grad)

    def minibatch_linear_root(self, model, p, c):
        s_xi, root = linear_root(model, p, c)
        return s_xi, root.mul_(safe_inverse_norm(p.grad))
