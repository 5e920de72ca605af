//! Where an access point or Outposts ARN leads: its own host and, for
//! Outposts, the signing name `s3-outposts` (docs/s3-wire.md). The ARN is
//! parsed once, by the config.

pub use crate::config::Arn;

impl Arn {
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
    }
}
