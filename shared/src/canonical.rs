//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant white space, and
//! serde_json's number and string encoding. Two equal objects always give the same bytes, whatever
//! order their keys were written in, so a digest over it is stable across renderers and releases.

use serde_json::Value;

/// The canonical JSON text of `value`.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's escaping of a plain string cannot fail.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            to_canonical_json(&a),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a":{"d":[true,null],"c":"x\"y"},"b":1}"#).expect("json");
        assert_eq!(to_canonical_json(&a), to_canonical_json(&b));
    }
}
