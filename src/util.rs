//! Small helpers of the request path.

/// A random S3-style request id: 16 upper-case hex digits.
pub fn request_id() -> String {
    use rand::Rng;
    format!("{:016X}", rand::thread_rng().gen::<u64>())
}
