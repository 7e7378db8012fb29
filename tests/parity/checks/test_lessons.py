"""parity.checks.lessons and parity.checks.docs: every difference measured in the run, the correct port within tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.checks.docs import lessons_markdown, plot_lessons
from parity.checks.lessons import LESSONS, run_lessons
from parity.spec import make_spec

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def findings():
    # Half-width resnet18: every lesson's mechanism at a quarter of the weights. Full width, the float64
    # training lessons peak at 3.2 GB, too close to a test worker's 4 GB beside what other modules leave;
    # `resnet-parity lessons` (docs/framework-differences.md) measures the full network.
    # The runtime lessons run on a narrower network of their own (`runtime_findings`): each exports files.
    spec = make_spec("resnet18", widths=(32, 64, 128, 256), stem_width=32)
    return run_lessons(
        "resnet18", size=32, seed=0, train_size=32, spec=spec, only=[k for k in LESSONS if k not in NARROW]
    )


RUNTIME = ("openvino_precision", "litert_batch", "aoti_range")
PRECISION = ("fp16_overflow", "bn_bf16", "int8_granularity", "int8_ends", "mixed_vs_autocast")
NARROW = RUNTIME + PRECISION
"""Lessons run on a narrow network: each exports files or builds networks of its own (the precision lessons in
test_precision_lessons.py, a module of its own so that another worker takes it)."""
SLOW = "aoti_range"
"""AOTInductor's lesson compiles two packages (about 16 s of C++ each): the extended tier runs it."""


@pytest.fixture(scope="module")
def runtime_findings():
    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10, layers=(1, 1, 1, 1))
    return run_lessons("resnet18", size=32, seed=0, spec=spec, only=[k for k in RUNTIME if k != SLOW])


def by_case(findings, lesson: str) -> list:
    return [f for f in findings if f.lesson == lesson]


def test_every_lesson_measured_and_correct_port_within_tolerance(findings, runtime_findings):
    findings = findings + runtime_findings
    assert {f.lesson for f in findings} == set(LESSONS) - {SLOW} - set(PRECISION)
    for f in findings:
        assert f.correct_ok, (f.lesson, f.case, f.correct)
        if f.lesson == "tf32":
            assert f.skipped == "no CUDA device" or f.naive is not None
            continue
        assert f.naive is not None, f.lesson
        assert f.naive.max_rel == f.naive.max_rel  # a real number, not NaN


@pytest.mark.parametrize(
    "lesson",
    [
        "bn_eps",
        "bn_momentum",
        "bn_variance",
        "weight_decay",
        "adam_epsilon",
        "weight_layout",
        "flatten_order",
        "train_eval",
    ],
)
def test_unhandled_difference_is_caught(findings, lesson):
    for f in by_case(findings, lesson):
        assert f.caught, (f.case, f.naive)
        assert f.naive.max_rel > 10 * f.tolerance, (f.case, f.naive.max_rel)


def test_default_initialisers_are_caught(findings):
    (f,) = by_case(findings, "initializers")
    assert f.caught
    # Glorot vs kaiming(fan_out) on a 3x3 conv with equal in/out channels: std ratio sqrt(1/2), a 29% gap.
    assert f.naive.max_rel > 0.25
    assert f.correct.max_rel < f.tolerance


def test_same_padding_matters_only_for_even_sizes(findings):
    even, odd = by_case(findings, "same_padding")
    assert even.caught and even.naive.first_divergent == "stem"
    assert "a stride-2 input is even" in even.case
    assert not odd.caught and "every stride-2 input odd" in odd.case


def test_zero_padded_max_pool_is_exact_after_relu_only(findings):
    after, before = by_case(findings, "maxpool_padding")
    assert after.naive.max_abs == 0.0 and not after.caught
    assert before.caught and before.naive.max_rel > 0.01


def test_nan_propagation_differs(findings):
    (nan,) = by_case(findings, "maxpool_nan")
    assert nan.caught and nan.naive.first_divergent == "stem"
    assert " vs 0 NaNs at the stem" in nan.case


def test_docs_page_and_plot(findings, runtime_findings, tmp_path):
    findings = findings + runtime_findings
    from parity.cli.lessons import LESSON_COLUMNS, lesson_rows

    png = plot_lessons(findings, tmp_path / "lessons.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = lessons_markdown(findings, LESSON_COLUMNS, lesson_rows(findings), "resnet-parity lessons", str(png))
    for lesson in LESSONS.values():
        assert f"## {lesson.title}" in page or lesson.key == SLOW or lesson.key in PRECISION
    assert "def make_pad" in page and "nn.BatchNorm2d" in page  # side-by-side snippets from the code
    assert "![per-stage drift of the naive ports](lessons.png)" in page


def test_committed_docs_cover_every_lesson():
    page = (ROOT / "docs" / "framework-differences.md").read_text()
    assert (ROOT / "docs" / "lessons.png").is_file()
    for lesson in LESSONS.values():
        assert f"## {lesson.title}" in page, f"regenerate docs: {lesson.title} is missing"


def test_unknown_lesson():
    with pytest.raises(ValueError, match="unknown lesson"):
        run_lessons(only=["nope"])


def test_family_lessons(findings):
    even, odd = by_case(findings, "avg_pool_edge")
    assert not even.caught and even.naive.max_rel <= even.tolerance  # 'valid' = 'same' when nothing is odd
    assert odd.caught and odd.naive.max_rel == float("inf") and "Incompatible shapes" in odd.naive.note
    for lesson in ("subsample_shortcut", "v2_stride"):
        (f,) = by_case(findings, lesson)
        assert f.caught and f.naive.max_rel > 100 * f.tolerance, (lesson, f.naive)
        assert f.correct_ok


def test_runtime_lessons(runtime_findings):
    findings = runtime_findings
    from parity.backends.runtimes import missing, runtime_named

    (openvino,) = by_case(findings, "openvino_precision")
    if missing("openvino") is None:
        default = runtime_named("openvino").default_precision()
        assert f"({default})" in openvino.case and "INFERENCE_PRECISION_HINT=f32" in openvino.correct.note
        assert openvino.correct_ok
        # bf16 (8 mantissa bits) is caught at once; where the CPU's default is fp32 the two runs are the same
        assert openvino.caught == (default != "fp32"), openvino.naive
    (litert,) = by_case(findings, "litert_batch")
    if missing("litert") is None:
        assert litert.correct_ok and litert.correct.note == "runs at batch 3"
        # Keras 3.15.1 (CI's pin) writes the first call's shape with every axis but the channels open
        # (shape_signature [-1, -1, -1, 3]): a model called at batch 1 runs batch 3, and right
        assert litert.naive.note == "runs at batch 3" and not litert.caught, litert.naive


@pytest.mark.extended  # two AOTInductor packages: about a minute of C++ compilation
def test_aoti_package_outside_its_range_runs_wrongly_without_an_error():
    from parity.backends.runtimes import missing

    if missing("aoti"):
        pytest.skip(missing("aoti"))
    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10)
    (f,) = run_lessons("resnet18", size=64, seed=0, spec=spec, only=[SLOW])
    assert f.caught and f.naive.max_rel > 1e-2 and f.naive.note == "ran without an error", f.naive
    assert f.correct_ok and f.correct.max_rel <= f.tolerance
