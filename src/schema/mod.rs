//! JSON Schemas (draft 2020-12) of the two files people edit: the gateway
//! config and a policy file, for editors (`# yaml-language-server:
//! $schema=…`) and CI validators. `s3gate schema config|policy` prints
//! them; `schemas/` holds the same text, kept equal by a test. The schemas
//! are stricter than nothing and looser than `s3gate check`: they know the
//! field names and shapes, `check` knows the principals and buckets.

mod config;
mod policy;

use serde_json::{json, Map, Value};

pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schemas by name, and the file each is committed as under `schemas/`.
pub const SCHEMAS: &[(&str, &str)] = &[
    ("config", "gateway.schema.json"),
    ("policy", "policy.schema.json"),
];

/// The schema named `name` (`config` or `policy`).
pub fn schema(name: &str) -> Option<Value> {
    match name {
        "config" => Some(config::schema()),
        "policy" => Some(policy::schema()),
        _ => None,
    }
}

/// The schema as committed: pretty JSON and a final newline.
pub fn render(name: &str) -> Option<String> {
    let mut s = serde_json::to_string_pretty(&schema(name)?).ok()?;
    s.push('\n');
    Some(s)
}

/// A closed object: these properties only (unknown keys are errors, as
/// the loaders say), the `required` ones present.
fn object(description: &str, props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut properties = Map::new();
    for (name, v) in props {
        properties.insert((*name).to_string(), v.clone());
    }
    let mut o = json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

fn integer(description: &str, minimum: u64) -> Value {
    json!({ "type": "integer", "minimum": minimum, "description": description })
}

fn one_of_strings(description: &str, values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values, "description": description })
}

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{def}") })
}

/// A regular expression that matches `words` in any letter case (IAM
/// action names and condition keys are case-insensitive).
fn any_case(words: &[&str]) -> String {
    let alts: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if "\\^$.|?*+()[]{}".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", alts.join("|"))
}

#[cfg(test)]
mod tests;
