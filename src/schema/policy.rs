//! The schema of a policy file (docs/policy.example.yaml): IAM's statement
//! shape, with the actions, condition operators and keys s3gate knows.

use serde_json::{json, Value};

use super::{any_case, object, one_of_strings, reference, string, DRAFT};
use crate::policy::actions::KNOWN;
use crate::policy::condition::{operator_names, KNOWN_KEYS};

fn one_or_many(item: Value, description: &str) -> Value {
    json!({
        "description": description,
        "oneOf": [
            item.clone(),
            { "type": "array", "items": item, "minItems": 1 },
        ],
    })
}

fn defs() -> Value {
    let mut actions: Vec<&str> = vec!["*", "s3:*"];
    actions.extend(KNOWN);
    let operators = operator_names();
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let names = json!({ "type": "string", "minLength": 1 });
    json!({
        "action": {
            "description": "An IAM action (case-insensitive; * and ? wildcards)",
            "type": "string",
            "anyOf": [
                { "enum": actions },
                { "pattern": "^(\\*|[sS]3:[A-Za-z*?]+)$" },
            ],
        },
        "actions": one_or_many(reference("action"), "One action or a list"),
        "resource": {
            "description": "\"*\", arn:aws:s3:::bucket or arn:aws:s3:::bucket/key-pattern (* and ? wildcards; no policy variables)",
            "type": "string",
            "pattern": "^(\\*|arn:aws:s3:::[a-z0-9.\\-_*?]+(/.*)?)$",
            "not": { "pattern": "\\$\\{" },
        },
        "resources": one_or_many(reference("resource"), "One resource or a list"),
        "principal": {
            "description": "Principal names of the gateway config, \"*\" (every signed principal), anonymous, or { AWS: …, s3gate: … }",
            "oneOf": [
                names.clone(),
                { "type": "array", "items": names.clone(), "minItems": 1 },
                {
                    "type": "object",
                    "properties": {
                        "AWS": one_or_many(names.clone(), "Names or IAM user ARNs"),
                        "s3gate": one_or_many(names, "The gateway's principal names"),
                    },
                    "additionalProperties": false,
                    "minProperties": 1,
                },
            ],
        },
        "values": one_or_many(scalar, "A value or a list of values"),
        "condition": {
            "description": "Operator → { condition key → value(s) }",
            "type": "object",
            "propertyNames": { "enum": operators },
            "additionalProperties": {
                "type": "object",
                "propertyNames": {
                    "anyOf": [
                        { "enum": KNOWN_KEYS },
                        { "pattern": any_case(KNOWN_KEYS) },
                    ],
                },
                "additionalProperties": reference("values"),
            },
        },
        "statement": statement(),
        "test": object("A test case run by `s3gate test`", &[
            ("name", string("What the case shows")),
            ("request", object("The request decided", &[
                ("principal", string("Principal name (or anonymous)")),
                ("action", reference("action")),
                ("resource", string("The ARN the action is decided on")),
                ("context", json!({ "type": "object", "description": "Condition keys and their values", "additionalProperties": reference("values") })),
            ], &["principal", "action", "resource"])),
            ("expect", one_of_strings("The expected decision", &["Allow", "Deny"])),
        ], &["request", "expect"]),
    })
}

fn statement() -> Value {
    let mut s = object(
        "An IAM-shaped statement",
        &[
            (
                "Sid",
                string("The statement's name in decisions, logs and metrics"),
            ),
            (
                "Effect",
                one_of_strings("Allow or Deny (an explicit Deny wins)", &["Allow", "Deny"]),
            ),
            ("Principal", reference("principal")),
            ("NotPrincipal", reference("principal")),
            ("Action", reference("actions")),
            ("NotAction", reference("actions")),
            ("Resource", reference("resources")),
            ("NotResource", reference("resources")),
            ("Condition", reference("condition")),
        ],
        &["Effect"],
    );
    s["oneOf"] = json!([{ "required": ["Action"] }, { "required": ["NotAction"] }]);
    s["allOf"] = json!([
        { "not": { "required": ["Principal", "NotPrincipal"] } },
        { "not": { "required": ["Resource", "NotResource"] } },
    ]);
    s
}

pub fn schema() -> Value {
    let top = object(
        "s3gate policy file (docs/policy.example.yaml)",
        &[
            (
                "Version",
                one_of_strings("IAM policy language version", &["2012-10-17", "2008-10-17"]),
            ),
            ("Id", string("The policy's name")),
            (
                "Statement",
                json!({
                    "description": "A statement or a list of statements",
                    "oneOf": [reference("statement"), { "type": "array", "items": reference("statement") }],
                }),
            ),
            (
                "Tests",
                json!({ "type": "array", "items": reference("test"), "description": "Cases run by `s3gate test`" }),
            ),
        ],
        &["Statement"],
    );
    let mut s = json!({ "$schema": DRAFT, "title": "s3gate policy" });
    for (k, v) in top.as_object().into_iter().flatten() {
        s[k] = v.clone();
    }
    s["$defs"] = defs();
    s
}
