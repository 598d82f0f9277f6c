//! RFC 8785 JSON Canonicalization Scheme over a `serde_json::Value`.
//!
//! Must produce the same bytes as the python `rfc8785` package that mcpsig.py uses, including
//! where that package refuses:
//! - integers (JSON numbers without fraction or exponent) outside ±(2^53 − 1) are an error, not
//!   rounded: silently rounding would let two different messages share one signature;
//! - other numbers are IEEE doubles printed the ECMAScript way (shortest round-trip digits, plain
//!   notation for exponents in [-6, 21), `-0` as `0`); NaN/∞ cannot occur in a `Value`.
//!
//! One known divergence: an integer literal beyond u64 (e.g. `18446744073709551616`) reaches us as
//! an f64 and is printed, where python refuses. Both sides still disagree only by refusing or by
//! failing to verify, never by accepting something the other would not sign.

use serde_json::{Map, Number, Value};

/// Deeper input is refused instead of risking the stack (the codec already caps depth at 64).
pub const MAX_DEPTH: usize = 128;

/// Largest integer an IEEE double represents exactly (and the bound python `rfc8785` enforces).
const INT_MAX: i64 = (1 << 53) - 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JcsError {
    #[error("integer {0} is beyond ±(2^53-1), which JSON numbers cannot carry exactly; send it as a string")]
    IntegerDomain(String),
    #[error("number {0} has no JCS form")]
    FloatDomain(String),
    #[error("JSON is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// JCS bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::new();
    write_value(value, None, 0, &mut out)?;
    Ok(out)
}

/// JCS bytes of `value` as if the member at the object-key `path` were absent (a missing path is
/// simply not omitted). Lets signers canonicalize "the message without its `sig`" with no deep copy.
pub fn to_vec_omitting(value: &Value, path: &[&str]) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::new();
    let omit = if path.is_empty() { None } else { Some(path) };
    write_value(value, omit, 0, &mut out)?;
    Ok(out)
}

fn write_value(
    value: &Value,
    omit: Option<&[&str]>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), JcsError> {
    if depth > MAX_DEPTH {
        return Err(JcsError::TooDeep);
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, None, depth + 1, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, omit, depth, out)?,
    }
    Ok(())
}

fn write_object(
    map: &Map<String, Value>,
    omit: Option<&[&str]>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // RFC 8785 §3.2.3: order by the UTF-16 code units of the key, not by UTF-8 bytes (they differ
    // for characters above U+FFFF versus U+E000..U+FFFF).
    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    let mut first = true;
    for (key, value) in members {
        let child_omit = match omit {
            Some([last]) if key == last => continue,
            Some([head, rest @ ..]) if key == head => Some(rest),
            _ => None,
        };
        if !first {
            out.push(b',');
        }
        first = false;
        write_string(key, out);
        out.push(b':');
        write_value(value, child_omit, depth + 1, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if let Some(i) = n.as_i64() {
        if !(-INT_MAX..=INT_MAX).contains(&i) {
            return Err(JcsError::IntegerDomain(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        // as_i64 failed, so u > i64::MAX: always out of range.
        return Err(JcsError::IntegerDomain(u.to_string()));
    } else {
        match n.as_f64() {
            Some(f) if f.is_finite() => write_double(f, out)?,
            _ => return Err(JcsError::FloatDomain(n.to_string())),
        }
    }
    Ok(())
}

/// ECMA-262 Number::toString for a finite double.
fn write_double(f: f64, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if f == 0.0 {
        out.push(b'0'); // covers -0
        return Ok(());
    }
    if f < 0.0 {
        out.push(b'-');
    }
    let sci = shortest_scientific(f.abs());
    let (mantissa, exp) = sci
        .split_once('e')
        .ok_or_else(|| JcsError::FloatDomain(sci.clone()))?;
    let exp: i32 = exp
        .parse()
        .map_err(|_| JcsError::FloatDomain(sci.clone()))?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // position of the decimal point relative to the digits
    let s = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let (d1, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let sign = if n > 0 { "+" } else { "-" };
        format!("{d1}{dot}{rest}e{sign}{}", (n - 1).abs())
    };
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Shortest round-trip digits as "d[.ddd]e[-]x", ties to even like ECMAScript and python's repr.
/// Rust's `{:e}` finds the shortest length k but breaks exact ties upward (612133915454408.25
/// prints as ...408.3; JS and python say ...408.2). Rust's fixed-precision formatting is exact
/// and rounds half to even, so redo the k digits that way and keep it when it still round-trips
/// (it can fail only beside a power of two, where the shortest form is then the only candidate).
fn shortest_scientific(f: f64) -> String {
    let shortest = format!("{f:e}");
    let k = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let even = format!("{:.*e}", k.saturating_sub(1), f);
    if even.parse::<f64>() == Ok(f) {
        even
    } else {
        shortest
    }
}

/// RFC 8785 §3.2.2.2: escape only `"`, `\` and C0 controls (short forms where JSON has them,
/// lowercase `\u00xx` otherwise); everything else is raw UTF-8.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jcs(text: &str) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_numbers() {
        // From RFC 8785 appendix B and python rfc8785 behaviour.
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1.0", "1"),
            ("1e2", "100"),
            ("1E+2", "100"),
            ("123.456", "123.456"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("1e-6", "0.000001"),
            ("1e-7", "1e-7"),
            ("1.5e-5", "0.000015"),
            ("-1.5e-7", "-1.5e-7"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000001", "0.000001"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("333333333.33333329", "333333333.3333333"),
            // Exact ties between two shortest candidates go to the even digit (ECMAScript, python).
            ("612133915454408.25", "612133915454408.2"),
            ("91387840132179.625", "91387840132179.62"),
            ("9007199254740991", "9007199254740991"),
            ("-9007199254740991", "-9007199254740991"),
            ("9007199254740992.0", "9007199254740992"),
            ("0.1", "0.1"),
            ("100", "100"),
        ];
        for (input, want) in cases {
            assert_eq!(jcs(input), want, "input {input}");
        }
    }

    #[test]
    fn long_decimals_parse_correctly_rounded() {
        // Needs serde_json's `float_roundtrip` feature: without it ~30% of 20-digit literals land
        // one ULP off python's float(), and python signers' signatures would not verify.
        let cases = [
            ("0.17801246309558322749653", "0.17801246309558322"),
            ("3.453997556048239312134e22", "3.4539975560482393e+22"),
            ("1.4546003305709394545915e-25", "1.4546003305709395e-25"),
        ];
        for (input, want) in cases {
            assert_eq!(jcs(input), want, "input {input}");
        }
    }

    #[test]
    fn unsafe_integers_are_refused() {
        for text in [
            "9007199254740992",
            "-9007199254740992",
            "18446744073709551615",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(
                matches!(to_vec(&value), Err(JcsError::IntegerDomain(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn strings_and_key_order() {
        assert_eq!(
            jcs(r#"{"b":"\u0000\u001f\b\f\n\r\t\"\\/\u007f\u2028é😀","a":1}"#),
            "{\"a\":1,\"b\":\"\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\u{7f}\u{2028}é😀\"}"
        );
        // RFC 8785 §3.2.3 example: UTF-16 order puts U+1F600 (D83D..) before U+FB33.
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2, "\r": 3, "1": 4, "\u{80}": 5, "\u{f6}": 6});
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            "{\"\\r\":3,\"1\":4,\"\u{80}\":5,\"\u{f6}\":6,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn nested_and_empty() {
        assert_eq!(
            jcs(r#" { "z" : [ 1 , { } , [ ] , null , true ] , "a" : { "y" : false, "x": "" } } "#),
            r#"{"a":{"x":"","y":false},"z":[1,{},[],null,true]}"#
        );
    }

    #[test]
    fn omitting_a_path() {
        let v = json!({"a": {"b": {"sig": "x", "k": 1}, "sig": "kept"}, "sig": "kept"});
        let out = to_vec_omitting(&v, &["a", "b", "sig"]).unwrap();
        assert_eq!(out, br#"{"a":{"b":{"k":1},"sig":"kept"},"sig":"kept"}"#);
        // A path that is not there omits nothing.
        assert_eq!(
            to_vec_omitting(&v, &["q", "sig"]).unwrap(),
            to_vec(&v).unwrap()
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!(1);
        for _ in 0..200 {
            v = json!([v]);
        }
        assert_eq!(to_vec(&v), Err(JcsError::TooDeep));
    }
}
