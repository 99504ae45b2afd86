"""Models whose activation is injected from config.

Every hidden activation is its own module named ``act1``, ``act2``, ... so probes can hook it by
name (`activation_layers`). Weights are initialised with the activation's recommended scheme
unless ``init`` overrides it (see `actlab.activations.init_weights`).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from actlab import activations


def _act(name: str, params: dict, num_features: int) -> nn.Module:
    return activations.build(name, num_features=num_features, **params)


class MLP(nn.Sequential):
    """in -> [Linear(width) -> act] x depth -> Linear(out). Input (N, *in_shape) is flattened."""

    def __init__(self, in_features: int, out_features: int, depth: int, width: int, activation: str, act_params: dict):
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        fan_in = in_features
        for i in range(1, depth + 1):
            layers += [(f"fc{i}", nn.Linear(fan_in, width)), (f"act{i}", _act(activation, act_params, width))]
            fan_in = width
        layers.append(("out", nn.Linear(fan_in, out_features)))
        super().__init__(OrderedDict(layers))


class CNN(nn.Sequential):
    """[Conv(c, kernel 3) -> act -> MaxPool(2)] x depth, channels width, 2*width, 4*width, ...;
    then Linear(fc_width) -> act -> Linear(out). 2-D on images (C, H, W) (8x8 digits, 28x28, 32x32);
    1-D on sequences (C, L), or (L,) read as one channel (MNIST-1D's length-40 signals)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_features: int,
        depth: int,
        width: int,
        fc_width: int,
        activation: str,
        act_params: dict,
    ):
        layers: list[tuple[str, nn.Module]] = []
        if len(in_shape) == 1:  # (L,) -> (1, L): a one-channel sequence
            in_shape = (1, in_shape[0])
            layers.append(("unflatten", nn.Unflatten(1, in_shape)))
        c, *spatial = in_shape
        conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(spatial) == 1 else (nn.Conv2d, nn.MaxPool2d)
        if min(spatial) >> depth < 1:
            raise ValueError(f"cnn depth {depth} pools a {'x'.join(map(str, spatial))} input below size 1")
        for i in range(1, depth + 1):
            out_c = width * 2 ** (i - 1)
            layers += [
                (f"conv{i}", conv(c, out_c, 3, padding=1)),
                (f"act{i}", _act(activation, act_params, out_c)),
                (f"pool{i}", pool(2)),
            ]
            c, spatial = out_c, [s // 2 for s in spatial]
        n_flat = c
        for s in spatial:
            n_flat *= s
        layers += [
            ("flatten", nn.Flatten()),
            (f"fc{depth + 1}", nn.Linear(n_flat, fc_width)),
            (f"act{depth + 1}", _act(activation, act_params, fc_width)),
            ("out", nn.Linear(fc_width, out_features)),
        ]
        super().__init__(OrderedDict(layers))


def activation_layers(model: nn.Module) -> OrderedDict[str, nn.Module]:
    """The hidden activation modules, in forward order, keyed by their name (act1, act2, ...)."""
    return OrderedDict((n, m) for n, m in model.named_children() if n.startswith("act"))


def weight_layers(model: nn.Module) -> OrderedDict[str, nn.Module]:
    """The Linear/Conv layers, in forward order (fc1.. / conv1.., then out)."""
    return OrderedDict((n, m) for n, m in model.named_children() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)))


def build(cfg, in_shape: tuple[int, ...], out_features: int, activation: str, act_params: dict) -> nn.Module:
    """Build the model named ``cfg.name`` ('mlp' or 'cnn') and initialise its weights."""
    if cfg.name == "mlp":
        n_in = 1
        for d in in_shape:
            n_in *= d
        model = MLP(n_in, out_features, cfg.depth, cfg.width, activation, act_params)
    elif cfg.name == "cnn":
        if len(in_shape) not in (1, 2, 3):
            raise ValueError(f"cnn needs images (C, H, W) or sequences (C, L) / (L,), got shape {tuple(in_shape)}")
        model = CNN(tuple(in_shape), out_features, cfg.depth, cfg.width, cfg.fc_width, activation, act_params)
    else:
        raise ValueError(f"unknown model {cfg.name!r}; valid: cnn, mlp")
    spec = activations.spec(activation)
    scheme = cfg.get("init") or spec.init
    slope = spec.negative_slope(act_params)
    for layer in weight_layers(model).values():
        activations.init_weights(layer, scheme, slope)
    return model
