"""Diagnostic codes NBF6xx: resources, images, volumes, labels, requirements."""

from __future__ import annotations

from nbflow.codes.model import EITHER, ERROR, Code, yaml

BAD_QUANTITY = Code(
    "NBF601",
    "bad-quantity",
    ERROR,
    "A CPU or memory value is not a Kubernetes quantity, or a limit is below its request.",
    "CPU and memory are Kubernetes quantities: `500m` or `2` CPUs, `512Mi` or `4Gi` of "
    "memory (`4GB` and `4 Gi` are not quantities). A `cpuLimit` or `memoryLimit` must be at "
    "least the request.",
    yaml("""
        resources:
          cpu: 2
          memory: 4GB
          cpuLimit: 1
    """),
    yaml("""
        resources:
          cpu: 2
          memory: 4Gi
          cpuLimit: 4
    """),
)
BAD_GPU = Code(
    "NBF602",
    "bad-gpu",
    ERROR,
    "`gpu` is not a positive whole number, or `gpuType` is not a resource name.",
    "Kubernetes schedules whole GPUs: `gpu` is 1 or more (leave it out for none; `0.5` is not "
    "an integer at all, NBF102). `gpuType` "
    "is an extended resource name such as `nvidia.com/gpu` or `amd.com/gpu`.",
    yaml("""
        resources:
          gpu: 0
          gpuType: NVIDIA A100
    """),
    yaml("""
        resources:
          gpu: 1
          gpuType: nvidia.com/gpu
    """),
)
IMAGE_TAG = Code(
    "NBF603",
    "image-tag",
    EITHER,
    "An image reference is invalid, or not pinned.",
    "An error when the text is not an image reference at all. A warning when it has no tag "
    "or uses `:latest`: a rebuild of the same pipeline may then run different code. Pin a tag "
    "or, better, a digest.",
    yaml("""
        image: python
        steps:
          train: {cells: 7, image: "ghcr.io/acme/trainer:latest"}
    """),
    yaml("""
        image: python:3.11-slim
        steps:
          train: {cells: 7, image: "ghcr.io/acme/trainer@sha256:4f0c..."}
    """),
)
VOLUME = Code(
    "NBF604",
    "volume",
    ERROR,
    "A volume is declared or mounted inconsistently.",
    "A volume has exactly one source, `claim` (an existing PersistentVolumeClaim) or `size` "
    "(a claim created per run), and an absolute `mountPath`. Names and mount paths are "
    "unique, and a step's `volumes` lists declared volumes only.",
    yaml("""
        volumes:
          - {name: data, mountPath: data, claim: shared, size: 10Gi}
        steps:
          train: {cells: 7, volumes: [dataset]}
    """),
    yaml("""
        volumes:
          - {name: data, mountPath: /data, claim: shared}
        steps:
          train: {cells: 7, volumes: [data]}
    """),
)
TIMEOUT = Code(
    "NBF605",
    "timeout",
    ERROR,
    "A timeout is not a positive duration.",
    "A step's `timeout` is a number of seconds or a duration made of `s`, `m`, `h` and `d` "
    "parts: `90s`, `30m`, `2h`, `1h30m`.",
    yaml("""
        steps:
          train: {cells: 7, timeout: 2 hours}
    """),
    yaml("""
        steps:
          train: {cells: 7, timeout: 2h}
    """),
)
ENV_NAME = Code(
    "NBF606",
    "env-name",
    ERROR,
    "An environment variable name is not valid.",
    "Kubernetes accepts environment variable names made of letters, digits, `_`, `-` and "
    "`.`, not starting with a digit; no spaces or `=`.",
    yaml("""
        env:
          OMP NUM THREADS: 1
    """),
    yaml("""
        env:
          OMP_NUM_THREADS: 1
    """),
)
BAD_LABEL = Code(
    "NBF607",
    "bad-label",
    ERROR,
    "A `nodeSelector` key or value is not a Kubernetes label.",
    "`nodeSelector` matches node labels, and Kubernetes refuses a pod whose selector is not "
    "label syntax: a key is an optional DNS subdomain prefix and `/`, then a name of at most "
    "63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit; a "
    "value is empty or such a name.",
    yaml("""
        steps:
          train:
            cells: 7
            nodeSelector:
              gpu type: NVIDIA A100
    """),
    yaml("""
        steps:
          train:
            cells: 7
            nodeSelector:
              nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB
    """),
)
REQUIREMENT_INVALID = Code(
    "NBF608",
    "requirement-invalid",
    ERROR,
    "A requirement is not one pip can read.",
    "Requirements, listed or in a requirements file, are PEP 508 requirements as pip reads "
    "them: `name`, `name==1.2`, `name[extra]>=1,<2`, `name @ https://...`. A step would "
    "otherwise fail at pip install time, on the cluster.",
    yaml("""
        requirements:
          - scikit-learn => 1.4
          - pandas 2.2
    """),
    yaml("""
        requirements:
          - scikit-learn>=1.4
          - pandas==2.2
    """),
)
