"""Every architecture with an activation option takes the PolyCom activations (statically, as `sweeplab validate`
reads the constructor, and when built), and the MLP-type architectures take `init: criticality`."""

from __future__ import annotations

import math
import typing

import pytest
import torch
from torch import nn

from sweeplab_modules.layers import PolyNorm, PolyReLU
from sweeplab_modules.layers.criticality import critical_variances
from sweeplab_modules.registry import MODELS, build_model, constructor_parameters

GRIDS = {1: (40,), 2: (25, 30)}
POLYCOM = {"polyrelu": PolyReLU, "polynorm": PolyNorm}
ACTIVATION_OPTIONS = [
    (model, parameter)
    for model in sorted(MODELS)
    for parameter in constructor_parameters(MODELS[model].target)
    if parameter.endswith("activation")
]


def _small(model: str) -> dict[str, typing.Any]:
    presets = MODELS[model].presets
    return dict(presets.get("small") or presets.get("paper") or {})


def test_every_activation_option_is_covered() -> None:
    assert {model for model, _ in ACTIVATION_OPTIONS} >= {"fno1d", "fno2d", "mgno", "deeponet1d", "multionet2d"}


@pytest.mark.parametrize(("model", "parameter"), ACTIVATION_OPTIONS, ids=[f"{m}.{p}" for m, p in ACTIVATION_OPTIONS])
@pytest.mark.parametrize("activation", list(POLYCOM))
def test_polycom_is_an_activation_choice(model: str, parameter: str, activation: str) -> None:
    annotation = constructor_parameters(MODELS[model].target)[parameter].annotation
    assert annotation is not None and f"'{activation}'" in annotation  # what `sweeplab validate` accepts
    entry = MODELS[model]
    torch.manual_seed(0)
    params = _small(model) | {parameter: activation}
    if parameter == "encoder_activation":  # the small presets read the sensors without a CNN encoder
        params["encoder_layers"] = 2
    built = build_model(model, 1, 1, **params)
    assert any(isinstance(module, POLYCOM[activation]) for module in built.modules())
    x = torch.randn(2, 1, *GRIDS[entry.spatial_dims])
    output = built(x)
    assert output.shape == x.shape and bool(torch.isfinite(output).all())
    output.pow(2).mean().backward()
    coefficients = [m.coefficients for m in built.modules() if isinstance(m, POLYCOM[activation])]
    assert all(c.grad is not None for c in coefficients)
    assert len(coefficients) >= 2  # one set of coefficients per layer, as in the paper, not one for the network


CRITICALITY_MODELS = sorted(m for m in MODELS if "init" in constructor_parameters(MODELS[m].target))


def _weighted_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]


def test_the_mlp_type_architectures_take_init_criticality() -> None:
    assert CRITICALITY_MODELS == ["deeponet1d", "deeponet2d", "multionet1d", "multionet2d"]
    for model in CRITICALITY_MODELS:
        assert constructor_parameters(MODELS[model].target)["init"].annotation == "Literal['default', 'criticality']"


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_deeponet_at_criticality_draws_every_layer_with_the_activations_variances(activation: str) -> None:
    torch.manual_seed(0)
    params = _small("deeponet2d") | {"branch_width": 256, "trunk_width": 256, "activation": activation}
    model = build_model("deeponet2d", 1, 1, **params, init="criticality")
    bias_variance, weight_variance = critical_variances(activation)
    layers = _weighted_layers(model)
    assert len(layers) == 2 + 2 + 3  # encoder convolutions, branch and trunk layers
    for layer in layers:
        if layer.weight.numel() >= 4096:  # enough draws for a 10 % check of the spread
            fan_in = layer.weight[0].numel()
            spread = float(layer.weight.detach().std())
            assert spread == pytest.approx(math.sqrt(weight_variance / fan_in), rel=0.1), layer
        if bias_variance == 0:
            assert float(layer.bias.detach().abs().max()) == 0.0
    default = build_model("deeponet2d", 1, 1, **params)  # the authors' Glorot initialisation, as before
    wide = default.branch[2].weight
    assert float(wide.detach().std()) == pytest.approx(math.sqrt(2 / (wide.shape[0] + wide.shape[1])), rel=0.1)


def test_multionet_at_criticality_initialises_each_part_for_its_own_activation() -> None:
    torch.manual_seed(0)
    params = _small("multionet1d") | {"width": 256, "branch_activation": "relu", "trunk_activation": "tanh"}
    model = build_model("multionet1d", 1, 1, **params, init="criticality")
    for layers, weight_variance in ((model.branch_layers, 2.0), (model.trunk_layers, 1.0)):
        hidden = layers[1].weight
        assert float(hidden.detach().std()) == pytest.approx(math.sqrt(weight_variance / 256), rel=0.1)
    with pytest.raises(ValueError, match="trunk_activation is 'silu_sin'"):
        build_model("multionet1d", 1, 1, **(params | {"trunk_activation": "silu_sin"}), init="criticality")


def test_init_and_polycom_are_validated_and_searchable_in_a_study() -> None:
    from sweeplab.spec import StudyError, parse_study

    study = """\
name: options
objective: {metric: val_rel_l2, direction: minimize}
data: {name: burgers, params: {n_train: 8, n_val: 4, n_test: 4, resolution: 64, fine_resolution: 256}}
models:
  - name: deeponet1d
    preset: small
    search:
      init: {choices: [default, criticality]}
      activation: {choices: [tanh, polyrelu, polynorm]}
trainer: {max_epochs: 1}
sampler: random
budget: {n_trials: 2}
"""
    plan = parse_study(study, "s.yaml").models[0]
    assert {d.target: d.choices for d in plan.dimensions} == {
        "init": ("default", "criticality"),
        "activation": ("tanh", "polyrelu", "polynorm"),
    }
    with pytest.raises(StudyError) as caught:
        parse_study(study.replace("criticality]", "critical]"), "s.yaml")
    assert "s.yaml:8 models[0].search.init.choices[1]: must be 'default' or 'criticality'" in str(caught.value)
