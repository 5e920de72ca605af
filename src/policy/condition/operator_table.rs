//! Every condition operator against the IAM documentation's meaning:
//! one table row per operator and boundary, absent keys, set forms.

use super::*;

/// Whether `op` with the policy's `values` holds for a key with
/// `present` (None: the key is absent).
fn holds(op: &str, values: &[&str], present: Option<&[&str]>) -> bool {
    let (set, base, if_exists) = parse_operator(op).expect(op);
    let c = Condition {
        operator: op.into(),
        base,
        set,
        if_exists,
        key: "k".into(),
        values: values.iter().map(|s| s.to_string()).collect(),
    };
    let mut ctx = ContextKeys::new();
    if let Some(p) = present {
        ctx.insert("k".into(), p.iter().map(|s| s.to_string()).collect());
    }
    c.evaluate(&ctx).0
}

/// The IAM operators on one value each: (operator, policy value,
/// request value, holds).
#[test]
fn each_operator_as_iam_documents_it() {
    let cases: &[(&str, &str, &str, bool)] = &[
        ("StringEquals", "abc", "abc", true),
        ("StringEquals", "abc", "ABC", false),
        ("StringNotEquals", "abc", "abd", true),
        ("StringEqualsIgnoreCase", "abc", "ABC", true),
        ("StringEqualsIgnoreCase", "abc", "abd", false),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", false),
        ("StringNotEqualsIgnoreCase", "abc", "abd", true),
        ("StringLike", "home/*/x?", "home/a/b/xy", true),
        ("StringLike", "home/*", "other/a", false),
        ("StringNotLike", "home/*", "home/a", false),
        ("StringNotLike", "home/*", "other/a", true),
        ("NumericEquals", "500", "500.0", true),
        ("NumericEquals", "500", "501", false),
        ("NumericEquals", "500", "many", false),
        ("NumericNotEquals", "500", "501", true),
        ("NumericNotEquals", "500", "500", false),
        ("NumericLessThan", "500", "499", true),
        ("NumericLessThan", "500", "500", false),
        ("NumericLessThanEquals", "500", "500", true),
        ("NumericLessThanEquals", "500", "501", false),
        ("NumericGreaterThan", "500", "501", true),
        ("NumericGreaterThan", "500", "500", false),
        ("NumericGreaterThanEquals", "500", "500", true),
        ("NumericGreaterThanEquals", "500", "499", false),
        // Dates: epoch seconds and RFC 3339 name the same instants.
        ("DateEquals", "1700000000", "2023-11-14T22:13:20Z", true),
        ("DateEquals", "2023-11-14", "2023-11-14T00:00:00Z", true),
        ("DateEquals", "2023-11-14T22:13:20.500Z", "1700000000", true),
        ("DateEquals", "2023-11-14", "1700000000", false),
        ("DateEquals", "2023-11-14", "yesterday", false),
        ("DateNotEquals", "2023-11-14", "2023-11-15", true),
        ("DateNotEquals", "2023-11-14", "2023-11-14", false),
        ("DateLessThan", "2023-11-14", "2023-11-13T23:59:59Z", true),
        ("DateLessThan", "2023-11-14", "2023-11-14", false),
        ("DateLessThanEquals", "2023-11-14", "2023-11-14", true),
        (
            "DateLessThanEquals",
            "2023-11-14",
            "2023-11-14T00:00:01Z",
            false,
        ),
        (
            "DateGreaterThan",
            "2023-11-14",
            "2023-11-14T00:00:01Z",
            true,
        ),
        ("DateGreaterThan", "2023-11-14", "2023-11-14", false),
        ("DateGreaterThanEquals", "2023-11-14", "2023-11-14", true),
        (
            "DateGreaterThanEquals",
            "2023-11-14",
            "2023-11-13T23:59:59Z",
            false,
        ),
        ("Bool", "true", "TRUE", true),
        ("Bool", "true", "false", false),
        ("IpAddress", "10.0.0.0/8", "10.255.0.1", true),
        ("IpAddress", "10.0.0.0/8", "11.0.0.1", false),
        ("IpAddress", "10.1.2.3", "10.1.2.3", true),
        ("IpAddress", "10.1.2.3", "10.1.2.4", false),
        ("IpAddress", "10.1.2.3/32", "10.1.2.4", false),
        ("IpAddress", "0.0.0.0/0", "203.0.113.9", true),
        // An IPv4 client on a dual-stack socket is still IPv4.
        ("IpAddress", "10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("IpAddress", "2001:db8::/32", "2001:db8:1::1", true),
        ("IpAddress", "2001:db8::/32", "2001:db9::1", false),
        ("IpAddress", "2001:db8::1", "2001:db8::2", false),
        ("IpAddress", "::/0", "2001:db8::2", true),
        ("IpAddress", "10.0.0.0/8", "2001:db8::1", false),
        ("IpAddress", "not-an-ip/8", "10.0.0.1", false),
        ("NotIpAddress", "10.0.0.0/8", "10.1.2.3", false),
        ("NotIpAddress", "10.0.0.0/8", "192.0.2.1", true),
    ];
    for &(op, policy, value, want) in cases {
        assert_eq!(
            holds(op, &[policy], Some(&[value])),
            want,
            "{op} {policy:?} vs {value:?}"
        );
    }
}

/// Absent keys: a negated operator holds, a positive one does not
/// unless `…IfExists`; ForAllValues holds (vacuously), ForAnyValue does
/// not; `Null` tests presence. An empty value list is absent.
#[test]
fn absent_keys_and_null() {
    assert!(holds("StringNotEquals", &["a"], None));
    assert!(holds("NotIpAddress", &["10.0.0.0/8"], None));
    assert!(!holds("StringEquals", &["a"], None));
    assert!(holds("StringEqualsIfExists", &["a"], None));
    assert!(!holds("StringEqualsIfExists", &["a"], Some(&["b"])));
    assert!(holds("ForAllValues:StringEquals", &["a"], None));
    assert!(!holds("ForAnyValue:StringEquals", &["a"], None));
    assert!(holds("Null", &["true"], None));
    assert!(holds("Null", &["true"], Some(&[])));
    assert!(!holds("Null", &["true"], Some(&["x"])));
    assert!(holds("Null", &["false"], Some(&["x"])));
    assert!(!holds("Null", &["false"], None));
}

/// A single-valued operator with several policy values holds if any
/// value matches (and a negated one if none does); the set forms look
/// at every request value.
#[test]
fn several_values() {
    assert!(holds("StringEquals", &["x", "b"], Some(&["b"])));
    assert!(!holds("StringNotEquals", &["x", "b"], Some(&["b"])));
    assert!(holds("ForAnyValue:StringLike", &["b*"], Some(&["a", "bc"])));
    assert!(!holds(
        "ForAnyValue:StringLike",
        &["z*"],
        Some(&["a", "bc"])
    ));
    assert!(holds(
        "ForAllValues:StringNotEquals",
        &["z"],
        Some(&["a", "b"])
    ));
    assert!(!holds(
        "ForAllValues:StringNotEquals",
        &["b"],
        Some(&["a", "b"])
    ));
}

#[test]
fn operator_spellings() {
    assert_eq!(
        parse_operator("ForAnyValue:StringLikeIfExists"),
        Some((SetOp::ForAnyValue, Base::StringLike, true))
    );
    assert_eq!(
        parse_operator("ForAllValues:NumericLessThan"),
        Some((SetOp::ForAllValues, Base::NumericLessThan, false))
    );
    assert_eq!(parse_operator("ForAnyValue:Null"), None);
    let names = operator_names();
    // 22 operators, each but Null also as IfExists, ForAnyValue, ForAllValues.
    assert_eq!(names.len(), 22 + 21 * 3);
    for n in &names {
        assert!(parse_operator(n).is_some(), "{n}");
    }
    assert!(names.contains(&"ForAllValues:IpAddress".to_string()));
    assert!(!names.contains(&"NullIfExists".to_string()));
    assert_eq!(canonical_key("AWS:SOURCEIP"), Some("aws:SourceIp"));
    assert_eq!(canonical_key("aws:NoSuchKey"), None);
}

#[test]
fn cidrs_policies_may_name() {
    for ok in [
        "10.0.0.0/8",
        "10.1.2.3",
        "0.0.0.0/0",
        "10.0.0.0/32",
        "::/0",
        "2001:db8::/128",
    ] {
        assert!(valid_cidr(ok), "{ok}");
    }
    for bad in [
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0.0/x",
        "host",
        "10.0.0/8",
    ] {
        assert!(!valid_cidr(bad), "{bad}");
    }
}

#[test]
fn why_names_the_key_and_values() {
    let (set, base, if_exists) = parse_operator("Null").unwrap();
    let c = Condition {
        operator: "Null".into(),
        base,
        set,
        if_exists,
        key: "aws:sourceip".into(),
        values: vec!["true".into()],
    };
    assert_eq!(
        c.evaluate(&ContextKeys::new()),
        (true, "Null: aws:sourceip is absent".to_string())
    );
}
