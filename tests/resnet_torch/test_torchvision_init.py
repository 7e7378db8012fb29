"""Under the same torch.manual_seed, resnet_torch's builders give torchvision's models bit for bit.

tests/fixtures/torchvision_init.json holds a SHA-256 of every tensor of torchvision's own models (made by
tests/fixtures/make_torchvision_init.py, torchvision 0.28 beside torch 2.13; CI cannot install it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import resnet_torch

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "torchvision_init.json").read_text())


@pytest.mark.parametrize("case", list(FIXTURE["models"]))
def test_same_seed_same_weights_as_torchvision(case):
    if torch.__version__.split("+")[0] != FIXTURE["torch"].split("+")[0]:
        pytest.skip(f"the fixture was made with torch {FIXTURE['torch']}; torch's generator may draw differently")
    wanted = FIXTURE["models"][case]
    torch.manual_seed(wanted["seed"])
    model = getattr(resnet_torch, case.split("-")[0])(zero_init_residual=wanted.get("zero_init_residual", False))
    got = {
        k: hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest() for k, v in model.state_dict().items()
    }
    assert list(got) == list(wanted["sha256"])  # torchvision's keys, in its order
    differ = [k for k in got if got[k] != wanted["sha256"][k]]
    assert not differ, f"{len(differ)} tensors differ from torchvision's, first {differ[:3]}"
