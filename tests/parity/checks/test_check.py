"""parity.checks.check: the full port-and-compare for every depth, size and direction."""

from __future__ import annotations

import pytest

from parity.checks.check import CheckConfig, check_arch
from parity.core import tolerances
from parity.spec import ARCHS, make_spec


def assert_parity(result) -> None:
    assert result.params.equal, result.params
    assert result.report.passed, str(result.report)
    assert result.report.float64 and result.report.port_passed
    assert max(s.max_rel for s in result.report.float64_stages) <= tolerances.FP64
    assert result.report.worst_ratio <= tolerances.FP32_NOISE_MULTIPLE


EXTENDED = pytest.mark.extended
DEEP = ("resnet101", "resnet152")


@pytest.mark.parametrize(
    "arch,direction",
    [
        # The two deepest are the extended tier: the same blocks as resnet50's in both directions (about 28 s
        # of the suite); tests/parity/checks/test_localise.py checks a calibrated resnet152 port at 64x64 in CI.
        pytest.param(arch, direction, marks=EXTENDED if arch in DEEP else ())
        for arch in ARCHS
        for direction in ("torch2keras", "keras2torch")
    ],
)
def test_all_depths_small_input(arch, direction):
    result = check_arch(make_spec(arch), CheckConfig(batch=1, height=64, width=64, direction=direction, seed=1))
    assert_parity(result)
    assert result.output_shape == [1, 1000]


@pytest.mark.parametrize(
    "arch,size,direction",
    [
        # resnet50 keras2torch at these sizes is the extended tier (keras2torch runs at every depth above), and
        # resnet50 at 224 (resnet18 runs at 224, resnet50 at the odd size).
        pytest.param(
            arch,
            size,
            direction,
            marks=EXTENDED if arch == "resnet50" and (direction == "keras2torch" or size == (224, 224)) else (),
        )
        for direction in ("torch2keras", "keras2torch")
        for arch in ("resnet18", "resnet50")
        for size in ((224, 224), (97, 131))
    ],
)
def test_full_and_odd_sizes(arch, size, direction):
    assert_parity(check_arch(make_spec(arch), CheckConfig(batch=2, height=size[0], width=size[1], direction=direction)))


@pytest.mark.parametrize(
    "overrides",
    [{"in_channels": 1}, {"in_channels": 4, "num_classes": 10}, {"stem": "cifar", "num_classes": 10}],
)
def test_overridden_specs(overrides):
    spec = make_spec("resnet18", **overrides)
    result = check_arch(spec, CheckConfig(batch=2, height=32, width=40))
    assert_parity(result)
    assert result.output_shape == [2, spec.num_classes]


@pytest.mark.parametrize("variant", ["v1", "keras_applications"])
def test_variants(variant):
    assert_parity(check_arch(make_spec("resnet50", variant), CheckConfig(batch=1, height=64)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction must be one of"):
        CheckConfig(direction="sideways")
    with pytest.raises(ValueError, match="batch must be >= 1, got 0"):
        CheckConfig(batch=0)
