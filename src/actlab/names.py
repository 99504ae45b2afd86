"""How the article and the figures name things: one table, imported by paper/bookdata.py and by the
figure scripts (workflow/scripts/figlib.py), so a figure never says "digits / mlp" or "act1" where
the text says "scikit-learn digits (8x8) MLP" and "hidden layer 1".

Activations are named by their registry entry (actlab.activations Spec.label); datasets, models
and initialisations here. An unknown key is shown as it is (a new dataset works before it is named).
"""

from __future__ import annotations

import re

from actlab import activations

DATASETS = {
    "digits": "scikit-learn digits (8x8)",
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "mnist1d": "MNIST-1D",
    "mnist_subset": "MNIST subset (5,000 real digits)",
    "synthetic": "a 2-D spiral",
    "synthetic_abs": "y = |x|",
}
MODELS = {"mlp": "MLP", "cnn": "CNN"}
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}
INITS = {
    "kaiming": "He (Kaiming) normal",
    "lecun": "LeCun normal",
    "xavier": "Xavier (Glorot) normal",
    "torch_default": "torch default U(+-1/sqrt(fan_in))",
    "he": "He normal",
    "rai": "RAI",
}


def activation(name: str) -> str:
    """ReLU, Leaky ReLU, ... (Spec.label); the key itself if not registered."""
    spec = activations.REGISTRY.get(name)
    return spec.display if spec is not None else name


def dataset(name: str) -> str:
    return DATASETS.get(name, name)


def model(name: str) -> str:
    return MODELS.get(name, name)


def optimizer(name: str) -> str:
    return OPTIMIZERS.get(name, name)


def experiment(dataset_: str, model_: str, depth: int | None = None, width: int | None = None) -> str:
    """'MNIST-1D, 8 x 128 MLP' (hidden layers x units; the CNN: '2-block CNN'), or without the
    architecture 'MNIST-1D MLP': the article's name for one experiment."""
    if depth is None:
        return f"{dataset(dataset_)} {model(model_)}"
    arch = f"{depth}\u00d7{width}" if model_ == "mlp" and width is not None else f"{depth}-block"
    return f"{dataset(dataset_)}, {arch} {model(model_)}"


def layer(name: str) -> str:
    """A probe's layer key as the text names it: act<l> (the activation of hidden layer l; dead_units
    tables), fc<l> / conv<l> (its weights; grad_flow tables) -> 'hidden layer l'; out -> 'output layer'.
    Anything else is returned as it is."""
    if name == "out":
        return "output layer"
    m = re.fullmatch(r"(?:act|fc|conv)(\d+)", str(name))
    return f"hidden layer {int(m.group(1))}" if m else str(name)


def layer_order(name: str) -> tuple:
    """Sort key for layer keys: hidden layers 1, 2, ..., 10 in order (not 1, 10, 2), output last."""
    m = re.search(r"(\d+)$", str(name))
    return (name == "out", int(m.group(1)) if m else 0, str(name))
