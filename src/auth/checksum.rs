//! Flexible checksums (`x-amz-checksum-*`), computed while the body streams.

use base64::Engine as _;
use crc_fast::{CrcAlgorithm, Digest as Crc};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::s3::{err, S3Error, S3ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// From a header name such as `x-amz-checksum-crc32`.
    pub fn from_header(name: &str) -> Option<Self> {
        Some(
            match name.to_ascii_lowercase().strip_prefix("x-amz-checksum-")? {
                "crc32" => Self::Crc32,
                "crc32c" => Self::Crc32c,
                "crc64nvme" => Self::Crc64Nvme,
                "sha1" => Self::Sha1,
                "sha256" => Self::Sha256,
                _ => return None,
            },
        )
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

/// A running checksum.
pub enum Checksum {
    Crc(ChecksumAlgorithm, Box<Crc>),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Checksum {
    pub fn new(alg: ChecksumAlgorithm) -> Self {
        match alg {
            ChecksumAlgorithm::Crc32 => {
                Checksum::Crc(alg, Box::new(Crc::new(CrcAlgorithm::Crc32IsoHdlc)))
            }
            ChecksumAlgorithm::Crc32c => {
                Checksum::Crc(alg, Box::new(Crc::new(CrcAlgorithm::Crc32Iscsi)))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                Checksum::Crc(alg, Box::new(Crc::new(CrcAlgorithm::Crc64Nvme)))
            }
            ChecksumAlgorithm::Sha1 => Checksum::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Checksum::Sha256(Sha256::new()),
        }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            Checksum::Crc(a, _) => *a,
            Checksum::Sha1(_) => ChecksumAlgorithm::Sha1,
            Checksum::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc(_, c) => c.update(data),
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => h.update(data),
        }
    }

    /// The base64 value S3 sends in `x-amz-checksum-*`.
    pub fn finish_base64(&self) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match self {
            Checksum::Crc(ChecksumAlgorithm::Crc64Nvme, c) => b64(&c.finalize().to_be_bytes()),
            Checksum::Crc(_, c) => b64(&(c.finalize() as u32).to_be_bytes()),
            Checksum::Sha1(h) => b64(&h.clone().finalize()),
            Checksum::Sha256(h) => b64(&h.clone().finalize()),
        }
    }

    /// Compare with the client's value; BadDigest when it differs.
    pub fn verify(&self, expected_b64: &str) -> Result<(), S3Error> {
        let got = self.finish_base64();
        if got == expected_b64.trim() {
            Ok(())
        } else {
            let name = self
                .algorithm()
                .header_name()
                .trim_start_matches("x-amz-checksum-")
                .to_ascii_uppercase();
            Err(err(
                S3ErrorCode::BadDigest,
                format!("The {name} you specified did not match the calculated checksum."),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = Checksum::new(alg);
        c.update(&data[..3]);
        c.update(&data[3..]);
        c.finish_base64()
    }

    #[test]
    fn known_values_of_hello_world() {
        // Values S3 returns for the object "Hello world".
        let d = b"Hello world";
        assert_eq!(b64(ChecksumAlgorithm::Crc32, d), "i9aeUg==");
        assert_eq!(b64(ChecksumAlgorithm::Crc32c, d), "crUfeA==");
        assert_eq!(
            b64(ChecksumAlgorithm::Sha1, d),
            "e1AsOh9IyGCa4hLN+2Od7jlnP14="
        );
        assert_eq!(
            b64(ChecksumAlgorithm::Sha256, d),
            "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="
        );
        assert_eq!(b64(ChecksumAlgorithm::Crc64Nvme, d), "OOJZ0D8xKts=");
        assert!(matches!(
            ChecksumAlgorithm::from_header("X-Amz-Checksum-CRC32C"),
            Some(ChecksumAlgorithm::Crc32c)
        ));
    }
}
