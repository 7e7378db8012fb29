"""The precision lessons (`parity.checks.lessons.precision`), measured on a narrow network in one run."""

from __future__ import annotations

import pytest

from parity.checks.lessons import run_lessons
from parity.spec import make_spec
from tests.parity.checks.test_lessons import PRECISION, by_case


@pytest.fixture(scope="module")
def precision_findings():
    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10, layers=(1, 1, 1, 1))
    return run_lessons("resnet18", size=32, seed=0, spec=spec, only=list(PRECISION))


def test_every_precision_lesson_is_measured(precision_findings):
    assert {f.lesson for f in precision_findings} == set(PRECISION)
    for f in precision_findings:
        assert f.correct_ok and (f.skipped or f.naive is not None), (f.lesson, f.case)


def test_precision_lessons(precision_findings):
    overflow = by_case(precision_findings, "fp16_overflow")
    assert overflow[0].naive.max_rel == float("inf") and overflow[0].caught
    assert overflow[0].naive.note.startswith("layer3.0.conv1 reaches ") and overflow[0].naive.note.endswith("> 65,504")
    for row in overflow:  # bf16 (fp32's range), and onnxruntime's fp16 graph with BatchNorm folded: finite
        assert 0 < row.correct.max_rel < 0.1 and row.correct_ok
    for row in by_case(precision_findings, "bn_bf16") + by_case(precision_findings, "mixed_vs_autocast"):
        for measure in (row.naive, row.correct):
            assert 2**-10 < measure.max_rel < 0.1, (row.case, measure)  # really bf16: above fp16's rounding
    same = by_case(precision_findings, "mixed_vs_autocast")[0]
    assert not same.caught and abs(same.naive.max_rel / same.correct.max_rel - 1) < 0.5  # both round BN's output
    for key in ("int8_granularity", "int8_ends"):
        for row in by_case(precision_findings, key):
            assert row.skipped or 1e-3 < row.correct.max_rel < 0.5, (row.case, row.correct)


def test_precision_lessons_page_and_plot(precision_findings, tmp_path):
    from parity.checks.docs import lessons_markdown, plot_lessons
    from parity.cli.lessons import LESSON_COLUMNS, lesson_rows

    png = plot_lessons(precision_findings, tmp_path / "lessons.png")  # the low-precision panel alone
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = lessons_markdown(precision_findings, LESSON_COLUMNS, lesson_rows(precision_findings), "lessons", str(png))
    assert "## fp16's range" in page and "## int8 weights: per tensor vs per channel" in page
