"""Resident ID numbers (GB 11643-1999): checksum, birth date and region prefix.

Pure: the caller passes `today`, so a birth date "in the future" is testable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# ISO 7064 MOD 11-2 weights for the 17 body digits, and the check character per remainder.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

# Province-level codes (the first two digits), GB/T 2260; 71/81/82 are Taiwan, Hong Kong
# and Macau (residence permits for them use 83/81/82), 83 is used for Taiwan residents.
PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西",
    "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门", "83": "台湾",
}  # fmt: skip

_OLDEST_BIRTH_YEAR = 1900
_SEPARATORS = re.compile(r"[\s\-]")
_SHAPE = re.compile(r"^\d{17}[0-9X]$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")


@dataclass(frozen=True)
class IdNumberCheck:
    """The result of checking one ID number; `reason` is user-facing Chinese, empty if valid."""

    valid: bool
    normalized: str
    reason: str
    birth_date: date | None = None
    province: str | None = None


def check_digit(body: str) -> str:
    """The 18th character for a 17-digit body (ISO 7064 MOD 11-2)."""
    if len(body) != 17 or not body.isdigit():
        raise ValueError("body must be 17 digits")
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalize(raw: str) -> str:
    """Strip spaces and dashes, full-width digits to ASCII, lowercase x to X."""
    text = raw.translate(_FULLWIDTH)
    return _SEPARATORS.sub("", text).upper()


def _birth_date(digits: str) -> date | None:
    try:
        return date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def check_id_number(raw: str, today: date) -> IdNumberCheck:
    """Check an 18-character resident ID number; the first failing rule gives the reason."""
    s = normalize(raw)
    if len(s) != 18:
        return IdNumberCheck(False, s, f"身份证号码应为18位，当前为{len(s)}位")
    if not _SHAPE.match(s):
        return IdNumberCheck(False, s, "身份证号码前17位应为数字，最后一位为数字或X")
    province = PROVINCES.get(s[:2])
    if province is None:
        return IdNumberCheck(False, s, f"地区代码{s[:6]}无效（省级代码{s[:2]}不存在）")
    if s[2:4] == "00" and s[:2] not in {"71", "81", "82", "83"}:
        return IdNumberCheck(False, s, f"地区代码{s[:6]}无效（缺少地市代码）", province=province)
    born = _birth_date(s[6:14])
    if born is None:
        return IdNumberCheck(False, s, f"出生日期{s[6:14]}不是有效日期", province=province)
    if born > today or born.year < _OLDEST_BIRTH_YEAR:
        return IdNumberCheck(
            False, s, f"出生日期{born.isoformat()}不合理", birth_date=born, province=province
        )
    expected = check_digit(s[:17])
    if s[17] != expected:
        return IdNumberCheck(
            False,
            s,
            f"校验码错误：最后一位应为{expected}，实为{s[17]}",
            birth_date=born,
            province=province,
        )
    return IdNumberCheck(True, s, "", birth_date=born, province=province)


def with_check_digit(body: str) -> str:
    """A full 18-character number for a 17-digit body (used to build test numbers)."""
    return body + check_digit(body)
