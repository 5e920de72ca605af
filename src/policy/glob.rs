//! IAM wildcards: `*` matches any run of characters, `?` any one character.

/// Whether `text` matches `pattern` (case-sensitive).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A `*` in the pattern is always a wildcard, even against a literal
        // `*` in the text (a key `protected/*x` must match `protected/*`).
        if pi < p.len() && p[pi] != b'*' && (p[pi] == b'?' || p[pi] == t[ti]) {
            // `?` matches one character; stay on UTF-8 boundaries.
            if p[pi] == b'?' {
                ti += utf8_len(t[ti]);
            } else {
                ti += 1;
            }
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            let next = st + utf8_len(t[st]);
            star = Some((sp, next));
            pi = sp + 1;
            ti = next;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn iam_wildcards() {
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c"));
        assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(matches("arn:aws:s3:::b*", "arn:aws:s3:::b"));
        assert!(matches("s3:*Object", "s3:GetObject"));
        assert!(matches("a?c", "abc"));
        assert!(matches("a?c", "aüc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*", ""));
        assert!(matches("*x*y*", "axbyc"));
        assert!(!matches("abc", "abcd"));
    }

    /// `?` is one character, whatever its UTF-8 length (S3 keys are
    /// UTF-8): two-, three- and four-byte characters, never half of one.
    #[test]
    fn question_mark_is_one_character_of_any_length() {
        for one in ["ü", "€", "😀"] {
            assert!(matches("a?c", &format!("a{one}c")), "{one}");
            assert!(!matches("a??c", &format!("a{one}c")), "{one}");
            assert!(matches("*?", one), "{one}");
        }
        assert!(matches("k/*?z", "k/😀€üz"));
        assert!(!matches("k/*?z", "k/z"));
        // A `*` backtracks over multi-byte characters too.
        assert!(matches("*€x", "€€€x"));
        assert!(!matches("*€x", "€€€y"));
    }

    #[test]
    fn a_star_in_the_pattern_matches_a_literal_star() {
        assert!(matches("protected/*", "protected/*x"));
        assert!(matches("a*", "a*"));
        assert!(!matches("a?", "a"));
    }

    #[test]
    fn wildcards_are_star_and_question_mark() {
        use super::has_wildcard;
        assert!(has_wildcard("arn:aws:s3:::b/*"));
        assert!(has_wildcard("s3:Get?bject"));
        assert!(!has_wildcard("arn:aws:s3:::b/k"));
    }
}
