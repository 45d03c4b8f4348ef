"""USAM (unnormalized SAM).

    x+ = x - eta grad f_gamma(x + rho g)
    dX = -(grad f + rho H grad f) dt + sqrt(eta) (Sigma + rho (H Sigma + Sigma H))^(1/2) dW
The drift is -grad f_U with f_U = f + (rho/2) |grad f|^2; the first-order diffusion is (I + rho H) Sigma^(1/2) dW.
Under mini-batch noise (docs/concepts.md) the drift term is E[H_gamma g_gamma] = H grad f + (1/2) grad tr Sigma,
exactly: the drift is -grad(f + (rho/2) E|grad f_gamma|^2); h_gamma = H_gamma g_gamma is linear in the batch
weights up to one quadratic term, which gives the noise-free ``linear`` diffusion (samsde.minibatch.linear_root).
"""

from __future__ import annotations

from samsde.algorithms.base import Algorithm, dense_hessian, sharpened, symmetrized
from samsde.minibatch import batch_curvature_mean, linear_root


class USAM(Algorithm):
    name = "usam"
    label = "USAM"
    color = "#d95f02"

    def perturbation(self, g, full_grad, rho):
        return rho * g

    def drift(self, model, p):
        return -(p.grad + model.rho * p.lin.hvp(p.grad))

    def diffusion(self, model, p, dw):
        return sharpened(model.rho, p, model.noise.sqrt_apply(p.x, dw))

    def diffusion_matrix(self, model, p, sigma):
        return sigma + model.rho * symmetrized(dense_hessian(model, p), sigma)

    def minibatch_mean(self, model, p):
        return batch_curvature_mean(model, p)

    def minibatch_linear_root(self, model, p, c):
        return linear_root(model, p, c)

    def torch_optimizer(self, params, base, rho, **kwargs):
        from samsde.optim import USAM as TorchUSAM

        return TorchUSAM(params, base, rho=rho, **kwargs)
