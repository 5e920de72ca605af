//! Bucket targets that are ARNs: S3 access points and S3 on Outposts
//! access points. Each resolves to its own host and, for Outposts, the
//! signing name `s3-outposts` (docs/s3-wire.md).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arn {
    /// `arn:aws:s3:{region}:{account}:accesspoint/{name}`
    AccessPoint {
        region: String,
        account: String,
        name: String,
    },
    /// `arn:aws:s3-outposts:{region}:{account}:outpost/{outpost}/accesspoint/{name}`
    Outposts {
        region: String,
        account: String,
        outpost: String,
        name: String,
    },
}

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

impl Arn {
    pub fn parse(s: &str) -> Result<Arn, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let bad = |why: &str| format!("`{s}` is not an access point or Outposts ARN: {why}");
        if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
            return Err(bad(
                "expected arn:aws:<service>:<region>:<account>:<resource>",
            ));
        }
        let (service, region, account, resource) = (parts[2], parts[3], parts[4], parts[5]);
        if !label_ok(region) {
            return Err(bad("the region is missing or invalid"));
        }
        if account.len() != 12 || !account.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("the account must be 12 digits"));
        }
        let res: Vec<&str> = resource.split(['/', ':']).collect();
        match (service, res.as_slice()) {
            ("s3", ["accesspoint", name]) if label_ok(name) => Ok(Arn::AccessPoint {
                region: region.into(),
                account: account.into(),
                name: name.to_string(),
            }),
            ("s3-outposts", ["outpost", outpost, "accesspoint", name])
                if label_ok(outpost) && label_ok(name) =>
            {
                Ok(Arn::Outposts {
                    region: region.into(),
                    account: account.into(),
                    outpost: outpost.to_string(),
                    name: name.to_string(),
                })
            }
            ("s3-outposts", ["outpost", _, "bucket", _]) => Err(bad(
                "Outposts buckets are reached through an access point ARN",
            )),
            _ => Err(bad(
                "expected accesspoint/<name> or outpost/<id>/accesspoint/<name>",
            )),
        }
    }

    pub fn region(&self) -> &str {
        match self {
            Arn::AccessPoint { region, .. } | Arn::Outposts { region, .. } => region,
        }
    }

    /// The SigV4 signing name.
    pub fn service(&self) -> &'static str {
        match self {
            Arn::AccessPoint { .. } => "s3",
            Arn::Outposts { .. } => "s3-outposts",
        }
    }

    /// The access point's host. Outposts has no dual-stack or FIPS hosts.
    pub fn host(&self, dualstack: bool, fips: bool) -> String {
        match self {
            Arn::AccessPoint {
                region,
                account,
                name,
            } => {
                let svc = if fips {
                    "s3-accesspoint-fips"
                } else {
                    "s3-accesspoint"
                };
                let ds = if dualstack { ".dualstack" } else { "" };
                format!("{name}-{account}.{svc}{ds}.{region}.amazonaws.com")
            }
            Arn::Outposts {
                region,
                account,
                outpost,
                name,
            } => format!("{name}-{account}.{outpost}.s3-outposts.{region}.amazonaws.com"),
        }
    }
}

/// The regional S3 endpoint host of AWS (dual-stack / FIPS variants).
pub fn aws_s3_host(region: &str, dualstack: bool, fips: bool) -> String {
    let svc = if fips { "s3-fips" } else { "s3" };
    let ds = if dualstack { ".dualstack" } else { "" };
    format!("{svc}{ds}.{region}.amazonaws.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_point_and_outposts_hosts() {
        let a = Arn::parse("arn:aws:s3:us-east-1:444455556666:accesspoint/datasets").unwrap();
        assert_eq!(
            a.host(false, false),
            "datasets-444455556666.s3-accesspoint.us-east-1.amazonaws.com"
        );
        assert_eq!(
            a.host(true, true),
            "datasets-444455556666.s3-accesspoint-fips.dualstack.us-east-1.amazonaws.com"
        );
        assert_eq!(a.service(), "s3");
        let o = Arn::parse("arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/reports").unwrap();
        assert_eq!(
            o.host(false, false),
            "reports-123456789012.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com"
        );
        assert_eq!((o.service(), o.region()), ("s3-outposts", "us-west-2"));
        assert!(Arn::parse("arn:aws:s3:::bucket").is_err());
        assert!(
            Arn::parse("arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-1/bucket/b").is_err()
        );
        assert_eq!(
            aws_s3_host("eu-west-1", true, true),
            "s3-fips.dualstack.eu-west-1.amazonaws.com"
        );
    }
}
