"""Evidence keys: created once even when processes race, verified from the public file
alone, rotated with old signatures still checking."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.signing import EvidenceKeys, check_with_pem, fingerprint


def test_racing_processes_end_with_one_key(tmp_path: Path) -> None:
    def sign(_: int) -> tuple[str, str]:
        return EvidenceKeys(tmp_path, "evidence-1").sign("the same text")

    with ThreadPoolExecutor(8) as pool:
        signatures = set(pool.map(sign, range(16)))
    assert len(signatures) == 1  # Ed25519 is deterministic: one key signed them all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence-1.pem",
                                                          "evidence-1.pub.pem"]
    assert (tmp_path / "evidence-1.pem").stat().st_mode & 0o777 == 0o600


def test_a_verifier_needs_only_the_public_file(tmp_path: Path) -> None:
    keys = EvidenceKeys(tmp_path / "signer", "evidence-1")
    signature, key_id = keys.sign("录像签封")
    pem = (tmp_path / "signer" / "evidence-1.pub.pem").read_text()
    assert check_with_pem(pem, "录像签封", signature)
    assert not check_with_pem(pem, "录像签封!", signature)
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    (auditor / "evidence-1.pub.pem").write_text(pem)
    assert EvidenceKeys(auditor, "evidence-1").check("录像签封", signature, key_id)
    assert len(fingerprint(pem)) == 16


def test_rotation_keeps_old_signatures_valid(tmp_path: Path) -> None:
    old_sig, old_id = EvidenceKeys(tmp_path, "evidence-1").sign("a")
    rotated = EvidenceKeys(tmp_path, "evidence-2")
    new_sig, new_id = rotated.sign("a")
    assert (old_id, new_id) == ("evidence-1", "evidence-2") and old_sig != new_sig
    assert rotated.check("a", old_sig, old_id) and rotated.check("a", new_sig, new_id)
    assert not rotated.check("a", old_sig, new_id)
    assert not rotated.check("a", old_sig, "../etc")
