//! The schema of `gateway.yaml` (docs/gateway.example.yaml), following
//! the raw serde structs of `config::raw` field by field.

use serde_json::{json, Value};

use super::{boolean, integer, object, one_of_strings, reference, string, DRAFT};
use crate::config::AuditEvent;

const DURATION: &str = "^[0-9]+ *(ms|s|m|h|d)?$";
const SIZE: &str = "^[0-9]+ *([kKmM]([iI]?[bB])?|[bB])?$";

fn secret(description: &str) -> Value {
    json!({ "$ref": "#/$defs/secret", "description": description })
}

fn duration(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": DURATION },
        ],
    })
}

fn defs() -> Value {
    let events: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
    json!({
        "secret": {
            "description": "A secret: \"literal\" (check warns), { env: VAR } or { file: /path }",
            "oneOf": [
                { "type": "string" },
                object("Read from an environment variable at start and on reload", &[("env", string("Variable name"))], &["env"]),
                object("Read from a file (trailing newline trimmed)", &[("file", string("File path"))], &["file"]),
            ],
        },
        "listener": object("A client listener", &[
            ("address", string("IP:port to listen on")),
            ("tls", object("Serve HTTPS with this certificate", &[
                ("cert", string("PEM certificate chain file")),
                ("key", string("PEM private key file")),
            ], &["cert", "key"])),
        ], &["address"]),
        "principal": object("A client identity: clients sign with its key, policies name it", &[
            ("name", string("The name policies use")),
            ("access_key_id", string("The access key id clients sign with")),
            ("secret_access_key", secret("The secret clients sign with")),
        ], &["name", "access_key_id", "secret_access_key"]),
        "credentials": {
            "description": "How the gateway signs towards the upstream",
            "oneOf": [
                { "type": "string", "enum": ["aws-default-chain"], "description": "env, shared profile, web identity, ECS, IMDSv2" },
                object("Assume a role", &[("assume_role", object("AssumeRole parameters", &[
                    ("role_arn", string("The role to assume")),
                    ("external_id", secret("ExternalId, if the role requires one")),
                    ("session_name", string("RoleSessionName")),
                    ("source", string("Credentials to assume it with (aws-default-chain)")),
                ], &["role_arn"]))], &["assume_role"]),
                object("Static keys (COS HMAC keys, S3-compatible stores)", &[
                    ("access_key_id", secret("Access key id")),
                    ("secret_access_key", secret("Secret access key")),
                    ("session_token", secret("Session token")),
                ], &["access_key_id", "secret_access_key"]),
                object("IBM Cloud IAM (kind cos): an API key exchanged for bearer tokens", &[("ibm_iam", object("IAM API key exchange", &[
                    ("api_key", secret("IBM Cloud API key")),
                    ("token_url", string("IAM token endpoint (default https://iam.cloud.ibm.com/identity/token)")),
                ], &["api_key"]))], &["ibm_iam"]),
            ],
        },
        "upstream": object("An S3 store requests go to", &[
            ("kind", one_of_strings("What kind of store", &["aws", "cos", "outposts", "s3-compatible"])),
            ("endpoint", string("URL of the store (required for cos and s3-compatible)")),
            ("region", string("Region the gateway signs for")),
            ("addressing", one_of_strings("Bucket addressing (default: virtual for aws, path otherwise)", &["path", "virtual"])),
            ("credentials", reference("credentials")),
            ("connect_to", string("Dial this address but keep the endpoint's Host and SNI")),
            ("tls", object("TLS towards the upstream", &[("ca_file", string("PEM CA bundle"))], &[])),
            ("checksum_trailers", boolean("Forward trailing checksums by re-framing aws-chunked bodies (default true)")),
            ("versioning", boolean("Whether the store keeps object versions (default: true for aws, cos, outposts)")),
            ("dualstack", boolean("Use the dual-stack endpoint (aws)")),
            ("fips", boolean("Use the FIPS endpoint (aws)")),
            ("service_instance_id", string("COS service instance (CRN or GUID), sent as ibm-service-instance-id on CreateBucket and ListBuckets")),
        ], &["kind", "credentials"]),
        "bucket": object("A client-visible bucket and its rules", &[
            ("upstream", string("The upstream it goes to")),
            ("target", string("The bucket name upstream, or an access point / Outposts ARN")),
            ("owner", string("The account (or COS instance) that must own it")),
            ("expected_bucket_owner", one_of_strings("x-amz-expected-bucket-owner rule", &["passthrough", "enforce", "require", "inject"])),
            ("request_payer", one_of_strings("x-amz-request-payer rule", &["allow", "deny", "require"])),
            ("cors", json!({ "type": "array", "items": reference("cors_rule"), "description": "CORS rules the gateway answers browsers with (none: preflights go to the upstream bucket)" })),
            ("abort_incomplete_after", json!({ "type": "string", "pattern": DURATION, "description": "The reaper aborts incomplete multipart uploads older than this (e.g. 7d); not on the catch-all" })),
        ], &["upstream"]),
        "cors_rule": object("A CORS rule (S3's CORSRule)", &[
            ("allowed_origins", json!({ "type": "array", "items": { "type": "string" }, "description": "Origins, each with at most one *" })),
            ("allowed_methods", json!({ "type": "array", "items": { "type": "string", "enum": ["GET", "PUT", "POST", "DELETE", "HEAD"] }, "description": "Methods" })),
            ("allowed_headers", json!({ "type": "array", "items": { "type": "string" }, "description": "Request headers a preflight may ask for (* wildcards)" })),
            ("expose_headers", json!({ "type": "array", "items": { "type": "string" }, "description": "Response headers scripts may read" })),
            ("max_age", integer("Seconds a browser may cache the preflight answer", 0)),
        ], &["allowed_origins", "allowed_methods"]),
        "rotate": object("Size-based rotation", &[
            ("max_bytes", integer("Rotate when the file reaches this size", 1)),
            ("keep", integer("Rotated files kept (file.1 is the newest)", 1)),
        ], &["max_bytes", "keep"]),
        "audit_event": { "type": "string", "enum": events },
    })
}

pub fn schema() -> Value {
    let top = object(
        "s3gate gateway configuration (docs/gateway.example.yaml)",
        &[
            ("listen", json!({ "type": "array", "items": reference("listener"), "description": "Where clients connect" })),
            ("region", string("The region clients sign their requests for")),
            ("hostnames", json!({ "type": "array", "items": { "type": "string" }, "description": "Base domains for virtual-hosted-style requests" })),
            ("principals", json!({ "type": "array", "items": reference("principal"), "description": "Who may call the gateway" })),
            ("upstreams", json!({ "type": "object", "additionalProperties": reference("upstream"), "description": "Where requests go, by name" })),
            ("buckets", json!({ "type": "object", "additionalProperties": reference("bucket"), "description": "Client-visible buckets (\"*\": the catch-all)" })),
            ("policies", object("Policy files", &[
                ("paths", json!({ "type": "array", "items": { "type": "string" }, "description": "Files and folders, relative to this file" })),
                ("mode", one_of_strings("enforce, or shadow (decide and log, but allow)", &["enforce", "shadow"])),
            ], &[])),
            ("multipart", object("Multipart uploads", &[
                ("ownership", object("Where upload initiators are recorded", &[
                    ("store", one_of_strings("s3 (shared, durable) or memory", &["s3", "memory"])),
                    ("upstream", string("Upstream of the state bucket (store s3)")),
                    ("bucket", string("State bucket (store s3)")),
                    ("prefix", string("Key prefix in the state bucket")),
                ], &["store"])),
                ("abort", object("The abort flow", &[
                    ("drain_in_flight", json!({ "type": "string", "pattern": DURATION, "description": "Wait this long for in-flight parts (30s)" })),
                    ("verify", boolean("ListParts after the abort; abort again while parts remain")),
                    ("max_attempts", integer("Abort attempts", 1)),
                ], &[])),
                ("abort_incomplete_after", json!({ "type": "string", "pattern": DURATION, "description": "Default age limit of incomplete uploads for named buckets (the reaper aborts older ones)" })),
                ("reaper", object("The background task that aborts expired and orphaned incomplete uploads", &[
                    ("every", json!({ "type": "string", "pattern": DURATION, "description": "How often it lists the buckets' uploads (e.g. 10m)" })),
                    ("orphans_after", json!({ "description": "Abort uploads of reaped buckets that have no initiator on record and were initiated longer ago than this (5m; off). Only with ownership store s3", "anyOf": [
                        { "type": "string", "pattern": DURATION },
                        { "const": "off" },
                    ]})),
                ], &["every"])),
            ], &[])),
            ("audit", object("The audit log (hash-chained JSON lines)", &[
                ("path", string("The log file")),
                ("events", json!({ "type": "array", "items": reference("audit_event"), "description": "Recorded besides AbortMultipartUpload" })),
                ("fsync", one_of_strings("When records reach the disk", &["always", "interval"])),
                ("on_failure", one_of_strings("When a record cannot be written", &["reject", "continue"])),
                ("rotate", reference("rotate")),
            ], &["path"])),
            ("decision_log", object("One JSON line per policy decision, for s3gate replay", &[
                ("path", string("The log file")),
                ("rotate", reference("rotate")),
            ], &["path"])),
            ("admin", object("Health, readiness and metrics", &[("address", string("IP:port of /healthz /readyz /metrics"))], &["address"])),
            ("log", object("Logging", &[
                ("format", one_of_strings("Line format", &["human", "json"])),
                ("level", string("tracing filter, e.g. info or s3gate=debug")),
            ], &[])),
            ("gateway_name", string("This gateway's name in audit records")),
            ("timeouts", object("Timeouts towards upstreams, in seconds", &[
                ("connect_secs", integer("Connect timeout", 0)),
                ("idle_secs", integer("Idle connection timeout", 0)),
                ("read_secs", integer("Read timeout", 0)),
            ], &[])),
            ("limits", object("What one client connection may cost", &[
                ("request_head_timeout", duration("Time to receive a request head (10s)")),
                ("max_header_bytes", json!({ "description": "Largest request head (16KiB)", "anyOf": [
                    { "type": "integer", "minimum": 1 },
                    { "type": "string", "pattern": SIZE },
                ]})),
                ("max_connections", integer("Connections per listener", 1)),
                ("idle_timeout", duration("Idle keep-alive connection timeout (60s)")),
            ], &[])),
            ("threads", integer("Worker threads (default: the cores)", 1)),
            (
                "zero_copy",
                boolean("Move large GetObject bodies with splice(2) when client and upstream are both plain TCP (default true)"),
            ),
            ("shutdown_grace_secs", integer("After SIGTERM, how long in-flight requests may take", 0)),
        ],
        &["listen", "region"],
    );
    let mut s = json!({ "$schema": DRAFT, "title": "s3gate gateway config" });
    for (k, v) in top.as_object().into_iter().flatten() {
        s[k] = v.clone();
    }
    s["$defs"] = defs();
    s
}
