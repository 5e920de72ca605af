//! Find where a YAML path (`buckets.media.upstream`, `principals[1]`) is
//! written in the source text, so every config error can name
//! file:line:column. serde_yaml's values carry no positions; this reads the
//! block structure of the text itself, which is how people write config.

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Render a path as `a.b[2].c`.
pub fn display(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A 1-based (line, column) position.
pub type Pos = (usize, usize);

struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

fn lines(src: &str) -> Vec<Line<'_>> {
    src.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') || t == "---" {
                return None;
            }
            Some(Line {
                no: i + 1,
                indent: l.len() - t.len(),
                text: t,
            })
        })
        .collect()
}

/// The key of a `key: value` line. A key may hold colons itself
/// (`s3:prefix: x`, `"aws:SourceIp": y`): it ends at the first `: ` or at a
/// colon that ends the line (or after its closing quote).
fn key_of(text: &str) -> Option<&str> {
    if let Some(q @ ('"' | '\'')) = text.chars().next() {
        let end = text[1..].find(q)? + 1;
        return text[end + 1..]
            .trim_start()
            .starts_with(':')
            .then(|| &text[1..end]);
    }
    let end = match text.find(": ") {
        Some(i) => i,
        None => text.strip_suffix(':')?.len(),
    };
    Some(text[..end].trim())
}

/// A line's key column and text, looking through a list item's dash.
fn effective<'a>(l: &Line<'a>) -> (usize, &'a str) {
    match l.text.strip_prefix("- ") {
        Some(t) => (
            l.indent + 2 + (t.len() - t.trim_start().len()),
            t.trim_start(),
        ),
        None => (l.indent, l.text),
    }
}

/// Locate `path`; falls back to the deepest step found (or line 1).
pub fn locate(src: &str, path: &[Step]) -> Pos {
    let ls = lines(src);
    // Lines [start, end) make up the current block; keys sit at `key_indent`.
    let (mut start, mut end) = (0usize, ls.len());
    let mut key_indent = ls.first().map_or(0, |l| l.indent);
    let mut found: Pos = (1, 1);
    for step in path {
        match step {
            Step::Key(k) => {
                let hit = (start..end).find(|&i| {
                    let (col, text) = effective(&ls[i]);
                    col == key_indent && key_of(text) == Some(k.as_str())
                });
                let Some(i) = hit else { return found };
                found = (ls[i].no, key_indent + 1);
                let mut j = i + 1;
                while j < end
                    && (ls[j].indent > key_indent
                        || (ls[j].indent == key_indent && ls[j].text.starts_with('-')))
                {
                    j += 1;
                }
                start = i + 1;
                end = j;
                key_indent = ls
                    .get(start)
                    .filter(|_| start < end)
                    .map_or(key_indent + 2, |l| l.indent);
            }
            Step::Index(n) => {
                let dash = ls
                    .get(start)
                    .filter(|_| start < end)
                    .map_or(key_indent, |l| l.indent);
                let hit = (start..end)
                    .filter(|&i| ls[i].indent == dash && ls[i].text.starts_with('-'))
                    .nth(*n);
                let Some(i) = hit else { return found };
                found = (ls[i].no, dash + 1);
                let mut j = i + 1;
                while j < end && ls[j].indent > dash {
                    j += 1;
                }
                start = i;
                end = j;
                key_indent = effective(&ls[i]).0;
            }
        }
    }
    found
}

/// Locate a key named in a serde message (``unknown field `x` ``) inside
/// the block at `path`.
pub fn locate_field(src: &str, path: &[Step], field: &str) -> Pos {
    let mut p = path.to_vec();
    p.push(Step::Key(field.to_string()));
    let deep = locate(src, &p);
    if deep != locate(src, path) {
        deep
    } else {
        locate(src, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "\
listen:
  - address: 127.0.0.1:9000
  - address: 0.0.0.0:9443
    tls:
      cert: /c
principals:
  - name: etl
    access_key_id: A
  - name: jan
    secret_access_key: { env: X }
buckets:
  media:
    upstream: cos
  \"*\":
    upstream: lab
";

    fn k(s: &str) -> Step {
        Step::Key(s.into())
    }

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(
            locate(SRC, &[k("buckets"), k("media"), k("upstream")]),
            (13, 5)
        );
        assert_eq!(locate(SRC, &[k("buckets"), k("*"), k("upstream")]), (15, 5));
        assert_eq!(locate(SRC, &[k("principals"), Step::Index(1)]), (9, 3));
        assert_eq!(
            locate(
                SRC,
                &[k("principals"), Step::Index(1), k("secret_access_key")]
            ),
            (10, 5)
        );
        assert_eq!(
            locate(SRC, &[k("listen"), Step::Index(1), k("tls"), k("cert")]),
            (5, 7)
        );
    }

    #[test]
    fn keys_with_colons() {
        let src =
            "Condition:\n  StringLike:\n    s3:prefix: \"a/*\"\n    \"aws:SourceIp\": 10.0.0.0/8\n";
        let at = |key: &str| locate(src, &[k("Condition"), k("StringLike"), k(key)]);
        assert_eq!(at("s3:prefix"), (3, 5));
        assert_eq!(at("aws:SourceIp"), (4, 5));
        assert_eq!(key_of("address: 127.0.0.1:9000"), Some("address"));
        assert_eq!(key_of("listen:"), Some("listen"));
    }

    #[test]
    fn falls_back_to_deepest_found() {
        assert_eq!(locate(SRC, &[k("buckets"), k("nope")]), (11, 1));
    }
}
