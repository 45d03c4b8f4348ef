# Lecture stage: small-scale reconstructions of the lecture's SAM background on scikit-learn's
# digits with a small MLP, and full-batch SAM on toy landscapes.  Each experiment is one job that writes tidy tables
# and its claims fragment, and one figure job that only reads the tables.  interpolation and lr_scaling reuse the
# small- and large-batch solutions of sharpness_sb_lb; hessian_spectrum reuses the solutions of sam_vs_sgd;
# full_batch_sharpness trains its own full-batch runs.


rule lecture_sharpness_sb_lb:
    output:
        runs="results/lecture/sb_lb_runs.csv",
        keskar="results/lecture/sb_lb_keskar.csv",
        params="results/lecture/sb_lb_params.csv",
        claims="results/claims/sharpness_sb_lb.csv",
    log:
        "logs/lecture/sharpness_sb_lb.log",
    benchmark:
        benchmark_file("lecture_sharpness_sb_lb", stage="lecture")
    priority: measured_priority("lecture_sharpness_sb_lb")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("large_batch"),
    script:
        "../../scripts/lecture_sharpness_sb_lb.py"


rule lecture_interpolation:
    input:
        params="results/lecture/sb_lb_params.csv",
    output:
        table="results/lecture/interpolation.csv",
        curvature="results/lecture/interpolation_curvature.csv",
        claims="results/claims/interpolation.csv",
    log:
        "logs/lecture/interpolation.log",
    benchmark:
        benchmark_file("lecture_interpolation", stage="lecture")
    priority: measured_priority("lecture_interpolation")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("large_batch", "interpolation"),
    script:
        "../../scripts/lecture_interpolation.py"


rule lecture_lr_scaling:
    input:
        runs="results/lecture/sb_lb_runs.csv",
    output:
        table="results/lecture/lr_scaling.csv",
        claims="results/claims/lr_scaling.csv",
    log:
        "logs/lecture/lr_scaling.log",
    benchmark:
        benchmark_file("lecture_lr_scaling", stage="lecture")
    priority: measured_priority("lecture_lr_scaling")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("large_batch", "lr_scaling"),
    script:
        "../../scripts/lecture_lr_scaling.py"


# one job per label set (the true labels, then each label-noise share): every job trains all its runs as one
# batched model, and the jobs run side by side


rule lecture_sam_vs_sgd:
    output:
        sweep="results/lecture/sam_vs_sgd/{labels}/sweep.csv",
        runs="results/lecture/sam_vs_sgd/{labels}/runs.csv",
        params="results/lecture/sam_vs_sgd/{labels}/params.csv",
        claims="results/claims/sam_vs_sgd.{labels}.csv",
    log:
        "logs/lecture/sam_vs_sgd/{labels}.log",
    benchmark:
        benchmark_file(
            "lecture_sam_vs_sgd", "{labels}", stage="lecture", labels=SAM_LABELS
        )
    wildcard_constraints:
        labels="|".join(SAM_LABELS),
    priority: measured_priority("lecture_sam_vs_sgd", "{labels}")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("sam_vs_sgd"),
        label_noise=lambda wc: SAM_LABELS[wc.labels],
    script:
        "../../scripts/lecture_sam_vs_sgd.py"


rule lecture_hessian_spectrum:
    input:
        params="results/lecture/sam_vs_sgd/true/params.csv",
    output:
        sharpness="results/lecture/hessian_sharpness.csv",
        topk="results/lecture/hessian_topk.csv",
        density="results/lecture/hessian_density.csv",
        claims="results/claims/hessian_spectrum.csv",
    log:
        "logs/lecture/hessian_spectrum.log",
    benchmark:
        benchmark_file("lecture_hessian_spectrum", stage="lecture")
    priority: measured_priority("lecture_hessian_spectrum")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("sam_vs_sgd", "hessian_spectrum"),
    script:
        "../../scripts/lecture_hessian_spectrum.py"


rule lecture_full_batch_sharpness:
    output:
        checkpoints="results/lecture/full_batch_checkpoints.csv",
        final="results/lecture/full_batch_final.csv",
        claims="results/claims/full_batch_sharpness.csv",
    log:
        "logs/lecture/full_batch_sharpness.log",
    benchmark:
        benchmark_file("lecture_full_batch_sharpness", stage="lecture")
    priority: measured_priority("lecture_full_batch_sharpness")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=lecture_section("full_batch_sharpness"),
    script:
        "../../scripts/lecture_full_batch_sharpness.py"


rule lecture_bouncing:
    output:
        quadratic="results/lecture/bouncing_quadratic.csv",
        valley="results/lecture/bouncing_valley.csv",
        claims="results/claims/bouncing.csv",
    log:
        "logs/lecture/bouncing.log",
    benchmark:
        benchmark_file("lecture_bouncing", stage="lecture")
    priority: measured_priority("lecture_bouncing")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section={"seed": config["seed"], "bouncing": LECTURE["bouncing"]},
    script:
        "../../scripts/lecture_bouncing.py"
