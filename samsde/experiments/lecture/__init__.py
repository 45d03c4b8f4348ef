"""The lecture's experiments, one module each, no file I/O.

Each module has ``run(settings, seed, ..., log=None) -> dict[str, DataFrame]`` (the tables, keyed by the rule's
output names; input tables are arguments) and ``claims(tables, settings, ...) -> list[Claim]``.

* :mod:`.sharpness_sb_lb`: small- vs large-batch SGD solutions, their sharpness and test error (Keskar et al.).
* :mod:`.interpolation`: losses along the line through the two solutions of ``sharpness_sb_lb``.
* :mod:`.lr_scaling`: the large batch again with lr * sqrt(k) and the small batch's updates (Hoffer et al.).
* :mod:`.sam_vs_sgd`: test error of SGD, SAM and USAM with rho chosen on a validation split.
* :mod:`.hessian_spectrum`: Hessian spectrum and three sharpness notions at the ``sam_vs_sgd`` solutions.
* :mod:`.full_batch_sharpness`: full-batch SAM vs gradient descent on the MLP: lambda_max and the ascent's alignment.
* :mod:`.bouncing`: full-batch SAM's two-cycle on a quadratic and its drift along a valley.
"""
