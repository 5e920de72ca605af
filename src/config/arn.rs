//! Bucket targets that are ARNs: S3 access points and S3 on Outposts
//! access points, parsed once from the config (docs/s3-wire.md). The hosts
//! and signing names they lead to are the router's (`route::arn`).

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

/// Why text is not an access point or Outposts ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not an access point or Outposts ARN: {why}")]
pub struct ArnError {
    pub arn: String,
    pub why: &'static str,
}

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

impl Arn {
    pub fn parse(s: &str) -> Result<Arn, ArnError> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let bad = |why: &'static str| ArnError {
            arn: s.to_string(),
            why,
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_points_and_outposts() {
        let a = Arn::parse("arn:aws:s3:us-east-1:444455556666:accesspoint/datasets").unwrap();
        assert_eq!(
            a,
            Arn::AccessPoint {
                region: "us-east-1".into(),
                account: "444455556666".into(),
                name: "datasets".into()
            }
        );
        let o = Arn::parse("arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/reports").unwrap();
        assert_eq!(o.region(), "us-west-2");
        assert!(Arn::parse("arn:aws:s3:::bucket").is_err());
        assert!(
            Arn::parse("arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-1/bucket/b").is_err()
        );
    }
}
