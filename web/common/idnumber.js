// GB 11643-1999 citizen ID number check, ported from verify/idnumber.py (server checks again).

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

export function checkDigit(first17) {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i];
  return CHECK[sum % 11];
}

// {valid, normalized, reason}: reason in plain Chinese when invalid.
export function checkIdNumber(raw, today = new Date()) {
  const s = (raw || "").trim().toUpperCase().replace(/\s+/g, "");
  if (s.length !== 18) return { valid: false, normalized: s, reason: "身份证号应为18位" };
  if (!/^\d{17}[\dX]$/.test(s)) {
    return { valid: false, normalized: s, reason: "前17位应为数字，最后一位为数字或X" };
  }
  const y = Number(s.slice(6, 10)), m = Number(s.slice(10, 12)), d = Number(s.slice(12, 14));
  const born = new Date(Date.UTC(y, m - 1, d));
  if (y < 1900 || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d
      || born.getTime() > today.getTime()) {
    return { valid: false, normalized: s, reason: "出生日期不正确" };
  }
  if (checkDigit(s) !== s[17]) {
    return { valid: false, normalized: s, reason: "校验位不对，请核对号码" };
  }
  return { valid: true, normalized: s, reason: "" };
}
