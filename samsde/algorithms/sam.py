"""SAM (Foret et al. 2021).

    x+ = x - eta grad f_gamma(x + rho g / |g|)
    u = (grad f + Z) / |grad f + Z|,  Z ~ N(0, Sigma)
    dX = -(grad f + rho H E[u]) dt + sqrt(eta) (Sigma + rho (C H + H C^T))^(1/2) dW,   C = Cov(Z, u)
The drift is -grad(f + rho E|grad f + Z|).  E[u] and C come from the SDE model's inner moments (closed form under
isotropic noise, else an inner Monte Carlo; samsde.sde).  The first-order diffusion, for Sigma = sigma^2 I only, is
sigma dW + rho (C H dW + H C^T dW) / (2 sigma).
"""

from __future__ import annotations

import torch

from samsde.algorithms.base import Algorithm, dense_hessian, safe_inverse_norm, symmetrized


class SAM(Algorithm):
    name = "sam"
    label = "SAM"
    color = "#7570b3"
    needs_inner_moments = True
    first_order_needs_isotropic = True

    def perturbation(self, g, full_grad, rho):
        return rho * safe_inverse_norm(g) * g

    def drift(self, model, p):
        if p.inner is None:  # no noise: u = grad f / |grad f| exactly
            h_mean = p.lin.hvp(p.grad * safe_inverse_norm(p.grad))
        else:
            h_mean = p.inner.h_mean(p.lin)
        return -(p.grad + model.rho * h_mean)

    def diffusion(self, model, p, dw):
        sigma = model.noise.isotropic_sigma
        return torch.add(dw * sigma, p.inner.correction(p.lin, dw), alpha=model.rho / (2 * sigma))

    def diffusion_matrix(self, model, p, sigma):
        return sigma + model.rho * symmetrized(dense_hessian(model, p), p.inner.cov_matrix().transpose(-1, -2))

    def torch_optimizer(self, params, base, rho, **kwargs):
        from samsde.optim import SAM as TorchSAM

        return TorchSAM(params, base, rho=rho, **kwargs)
