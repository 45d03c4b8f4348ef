"""SGD: x+ = x - eta g;  dX = -grad f dt + sqrt(eta) Sigma^(1/2) dW."""

from __future__ import annotations

from samsde.algorithms.base import Algorithm


class SGD(Algorithm):
    name = "sgd"
    label = "SGD"
    color = "#1b9e77"

    def drift(self, model, p):
        return -p.grad

    def diffusion(self, model, p, dw):
        return model.noise.sqrt_apply(p.x, dw)

    def diffusion_matrix(self, model, p, sigma):
        return sigma.expand(p.x.shape[0], -1, -1) if sigma.dim() == 2 else sigma

    def torch_optimizer(self, params, base, rho, **kwargs):
        return base(params, **kwargs)
