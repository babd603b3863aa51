//! Go's ways of turning a decoded JSON value into text, as kubectl prints them:
//! `fmt.Print` for scalars and `encoding/json.Marshal` for maps and lists.

use serde_json::Value;

/// A JSON number the way kubectl holds it after decoding an object: an `int64`
/// when the number is integral and fits, else a `float64`.
///
/// kubectl reads `1000000.0` back as the integer 1000000 (checked with kubectl
/// 1.32: `{.n}` prints `1000000`, not Go's float `1e+06`), while `9.3e18` (over
/// `int64`) stays a float and prints `9.3e+18`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum GoNumber {
    Int(i64),
    Float(f64),
}

impl GoNumber {
    pub(super) fn of(number: &serde_json::Number) -> GoNumber {
        if let Some(int) = number.as_i64() {
            return GoNumber::Int(int);
        }
        let float = number.as_f64().unwrap_or(f64::NAN);
        // -2^63 and 2^63 are exact as floats; 2^63 itself already overflows int64.
        let int64_range = (i64::MIN as f64)..-(i64::MIN as f64);
        if float.fract() == 0.0 && int64_range.contains(&float) {
            GoNumber::Int(float as i64)
        } else {
            GoNumber::Float(float)
        }
    }

    /// `fmt.Print`: floats use `%v`, i.e. `%g` with the shortest digits, so the
    /// exponent form starts at 1e+06 and below 1e-04.
    pub(super) fn to_text(self) -> String {
        match self {
            GoNumber::Int(int) => int.to_string(),
            GoNumber::Float(float) => {
                let (negative, digits, exponent) = shortest_digits(float);
                let body = if !(-4..6).contains(&exponent) {
                    exponent_form(&digits, exponent, 2)
                } else {
                    fixed_form(&digits, exponent)
                };
                if negative { format!("-{body}") } else { body }
            }
        }
    }

    /// `json.Marshal`: plain digits from 1e-6 up to 1e21, exponent form outside.
    fn to_json(self) -> String {
        match self {
            GoNumber::Int(int) => int.to_string(),
            GoNumber::Float(float) => {
                let (negative, digits, exponent) = shortest_digits(float);
                let abs = float.abs();
                let body = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    exponent_form(&digits, exponent, 1)
                } else {
                    fixed_form(&digits, exponent)
                };
                if negative { format!("-{body}") } else { body }
            }
        }
    }
}

/// The shortest round-trip decimal digits of `float` and the exponent of the
/// first digit (`1.5e-7` gives `("15", -7)`); Go and Rust agree on these digits.
fn shortest_digits(float: f64) -> (bool, String, i32) {
    let scientific = format!("{:e}", float.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    (
        float.is_sign_negative() && float != 0.0,
        mantissa.replace('.', ""),
        exponent.parse().unwrap_or(0),
    )
}

fn exponent_form(digits: &str, exponent: i32, min_exponent_digits: usize) -> String {
    let (first, rest) = digits.split_at(1);
    let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{first}{fraction}e{sign}{:0min_exponent_digits$}", exponent.unsigned_abs())
}

fn fixed_form(digits: &str, exponent: i32) -> String {
    let point = exponent + 1; // digits before the decimal point
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    }
}

/// Compact JSON as Go's `json.Marshal` writes a `map[string]interface{}`: keys
/// sorted (whatever order the `Map` keeps), and `<`, `>`, `&`, U+2028, U+2029
/// escaped, because Go's encoder escapes HTML by default and kubectl keeps it.
pub(super) fn to_go_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&GoNumber::of(n).to_json()),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: Value) -> String {
        match v {
            Value::Number(n) => GoNumber::of(&n).to_text(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn numbers_print_like_go_fmt_and_json() {
        // Expected strings come from kubectl 1.32 printing the same numbers.
        let cases = [
            (json!(0.25), "0.25", "0.25"),
            (json!(1e21), "1e+21", "1e+21"),
            (json!(1e20), "1e+20", "100000000000000000000"),
            (json!(1e-7), "1e-07", "1e-7"),
            (json!(1e-5), "1e-05", "0.00001"),
            (json!(0.0001), "0.0001", "0.0001"),
            (json!(1000000.0), "1000000", "1000000"),
            (json!(9.3e18), "9.3e+18", "9300000000000000000"),
            (json!(u64::MAX), "1.8446744073709552e+19", "18446744073709552000"),
            (json!(-2.5), "-2.5", "-2.5"),
            (json!(-0.0), "0", "0"),
            (json!(123456.789), "123456.789", "123456.789"),
            (json!(1.5e300), "1.5e+300", "1.5e+300"),
            (json!(15012), "15012", "15012"),
        ];
        for (value, fmt_text, json_text) in cases {
            assert_eq!(text(value.clone()), fmt_text, "fmt of {value}");
            assert_eq!(to_go_json(&value), json_text, "json of {value}");
        }
    }

    #[test]
    fn json_escapes_html_and_sorts_keys() {
        let value = json!({"b": "a<b>&c \u{2028} \u{1} \t é", "a": [1, null, true]});
        assert_eq!(
            to_go_json(&value),
            r#"{"a":[1,null,true],"b":"a\u003cb\u003e\u0026c \u2028 \u0001 \t é"}"#
        );
    }
}
