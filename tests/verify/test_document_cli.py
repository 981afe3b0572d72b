"""`python -m verify document IMAGE --out FILE`: one JSON object and the flat scan."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from testkit.synth_doc import make_frame
from verify.cli import main


def test_document_command_prints_verdict_and_writes_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = make_frame(np.random.default_rng(51), "a4", "good")
    image, out = tmp_path / "frame.jpg", tmp_path / "scan.png"
    cv2.imwrite(str(image), f.image)
    assert main(["document", str(image), "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["found"] is True
    assert result["kind"] == "a4"
    assert result["verdict"] == "ok" and result["reasons"] == []
    assert len(result["corners"]) == 4
    assert "sharpness" in result["measures"]
    scan = np.asarray(cv2.imread(str(out)))
    assert scan.shape[:2] == (1754, 1240)


def test_document_command_reads_an_id_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], faces: Path
) -> None:
    f = make_frame(np.random.default_rng(52), "id_card", "good", faces)
    image = tmp_path / "card.png"
    cv2.imwrite(str(image), f.image)
    assert main(["document", str(image)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "id_card"
    number = result["id_number"]
    assert number["number"] in {f.id_number, None}
    assert number["status"] in {"valid", "unreadable"}


def test_document_command_says_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = make_frame(np.random.default_rng(53), "booklet", "too_dark")
    image = tmp_path / "dark.jpg"
    cv2.imwrite(str(image), f.image)
    assert main(["document", str(image)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "too_dark"
    assert result["reasons"][0] == "太暗"
