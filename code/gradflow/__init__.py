"""gradflow: the code behind the Gradient Flow course.

import gradflow
gradflow.set_seed(0)
model = gradflow.models.mlp(depth=10, width=64, activation="sigmoid", init="xavier")
with gradflow.probes.Probe(model) as probe: ...
"""

from . import (
    activations,
    clipping,
    dashboard,
    data,
    diagnose,
    init,
    jacobians,
    models,
    norms,
    plots,
    probes,
    propagation,
    recurrent,
    residual,
    train,
    widgets,
)
from .core import check, default_device, model_device, set_seed, to_model_device

__version__ = "0.1.0"
__all__ = [
    "activations",
    "check",
    "clipping",
    "dashboard",
    "data",
    "default_device",
    "diagnose",
    "init",
    "jacobians",
    "model_device",
    "models",
    "norms",
    "plots",
    "probes",
    "propagation",
    "recurrent",
    "residual",
    "set_seed",
    "to_model_device",
    "train",
    "widgets",
]
