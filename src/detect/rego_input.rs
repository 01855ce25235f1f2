//! JSON → regorus values for the policy input, straight from the decoded event (no intermediate
//! copy) and with object keys interned: the same few hundred LogEvent keys recur in every event,
//! and allocating each one anew was a large share of the cost of an evaluated event.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// Keys interned at most; past this (a flood of unusual keys) keys are simply allocated.
const MAX_INTERNED_KEYS: usize = 4096;

/// Converts JSON to regorus values, reusing the allocation of every object key seen before.
#[derive(Default)]
pub struct RegoConverter {
    keys: HashMap<String, regorus::Value>,
}

impl RegoConverter {
    /// Convert any JSON value.
    pub fn value(&mut self, value: &Value) -> regorus::Value {
        match value {
            Value::Null => regorus::Value::Null,
            Value::Bool(b) => regorus::Value::from(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    regorus::Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    regorus::Value::from(u)
                } else {
                    regorus::Value::from(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            // Values are not interned: most are ids, addresses and times that never repeat, and
            // a lookup for each cost more than it saved (measured).
            Value::String(s) => regorus::Value::from(s.as_str()),
            Value::Array(items) => {
                regorus::Value::from(items.iter().map(|v| self.value(v)).collect::<Vec<_>>())
            }
            Value::Object(map) => self.object(map),
        }
    }

    /// Convert a JSON object.
    pub fn object(&mut self, map: &Map<String, Value>) -> regorus::Value {
        let mut fields = Vec::with_capacity(map.len());
        for (key, value) in map {
            fields.push((self.key(key), self.value(value)));
        }
        // The pairs are already in key order, so this builds the tree without re-sorting.
        regorus::Value::from(fields.into_iter().collect::<BTreeMap<_, _>>())
    }

    fn key(&mut self, key: &str) -> regorus::Value {
        if let Some(interned) = self.keys.get(key) {
            return interned.clone();
        }
        let value = regorus::Value::from(key);
        if self.keys.len() < MAX_INTERNED_KEYS {
            self.keys.insert(key.to_owned(), value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_matches_regorus_own_json_reading_and_reuses_keys() {
        let json = serde_json::json!({"a": [1, -2, 3.5, 18446744073709551615u64, true, null, "x"], "b": {"c": {}, "a": 1}});
        let theirs = regorus::Value::from_json_str(&json.to_string()).unwrap();
        let mut converter = RegoConverter::default();
        assert_eq!(converter.value(&json), theirs);
        assert_eq!(
            converter.value(&json),
            theirs,
            "the second time, from interned keys"
        );
        assert_eq!(converter.keys.len(), 3, "a, b and c");
    }
}
