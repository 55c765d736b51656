//! Output names as strftime templates (`/srv/rec/front/%Y-%m-%d/%H%M%S.mp4`): made for the
//! local time of a file's first frame, with a numeric suffix when the name is taken, and
//! recognised again, so that retention deletes only what this template made.

use std::path::{Path, PathBuf};

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// Exactly this many ASCII digits.
    Digits(usize),
    /// One or more ASCII digits.
    Number,
    /// One or more ASCII letters.
    Word,
    /// Space-padded day of the month (`%e`): two characters, digits or a leading space.
    PaddedDay,
    /// A UTC offset (`%z`): a sign and four digits.
    Offset,
}

/// A strftime template for output names.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pattern: String,
    tokens: Vec<Token>,
    /// The directory that every name lies under: the template's leading components without
    /// a `%`.
    root: PathBuf,
    /// How many path components a name has below `root`.
    depth: usize,
}

impl Template {
    /// Parses a template; an error names what is wrong with it.
    pub(crate) fn parse(pattern: &str) -> Result<Template, String> {
        let mut tokens = Vec::new();
        // Names are compared without a leading "./", which walking a directory adds.
        let mut chars = pattern.strip_prefix("./").unwrap_or(pattern).chars();
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let directive = chars.next().ok_or("it ends in a lone `%`")?;
            let expanded = directive_tokens(directive)
                .ok_or_else(|| format!("it has `%{directive}`, which output names do not take"))?;
            for t in expanded {
                match t {
                    Token::Literal(l) => literal.push_str(&l),
                    other => {
                        if !literal.is_empty() {
                            tokens.push(Token::Literal(std::mem::take(&mut literal)));
                        }
                        tokens.push(other);
                    }
                }
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        let path = Path::new(pattern);
        let fixed: Vec<_> = path
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains('%'))
            .collect();
        let total = path.components().count();
        if fixed.len() == total {
            return Err("it has no `%` field in its file name".into());
        }
        let root: PathBuf = fixed.iter().collect();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        Ok(Template {
            pattern: pattern.to_owned(),
            tokens,
            depth: total - fixed.len(),
            root,
        })
    }

    /// The name for a file whose first frame came at `at`.
    pub(crate) fn expand(&self, at: &jiff::Zoned) -> PathBuf {
        // The directives were checked by `parse`; a failure here falls back to the pattern.
        let name = jiff::fmt::strtime::format(&self.pattern, at)
            .unwrap_or_else(|_| self.pattern.replace('%', "_"));
        PathBuf::from(name)
    }

    /// Whether `path` (as the template writes it, relative or not) is a name this template
    /// makes, with or without the suffix a taken name gets.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        let text = path.to_string_lossy();
        let text = text.strip_prefix("./").unwrap_or(&text);
        if match_tokens(&self.tokens, text) {
            return true;
        }
        let plain = without_suffix(text);
        !plain.is_empty() && match_tokens(&self.tokens, &plain)
    }

    /// Calls `each` with every file under the root that this template names — the `.partial`
    /// of one too — and its metadata.
    pub(crate) fn walk(&self, each: &mut dyn FnMut(PathBuf, &std::fs::Metadata)) {
        self.walk_in(&self.root, self.depth, each);
    }

    fn walk_in(&self, dir: &Path, depth: usize, each: &mut dyn FnMut(PathBuf, &std::fs::Metadata)) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if depth > 1 {
                if meta.is_dir() {
                    self.walk_in(&path, depth - 1, each);
                }
                continue;
            }
            let finished = path.with_extension("");
            let name = match path.extension() {
                Some(e) if e == "partial" => &finished,
                _ => &path,
            };
            if meta.is_file() && self.matches(name) {
                each(path, &meta);
            }
        }
    }

    /// The template as given.
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The directory all names lie under.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// How many path components a name has below [`Template::root`].
    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }
}

/// `name-3.mp4` → `name.mp4`; anything else → "".
fn without_suffix(text: &str) -> String {
    let (stem, ext) = match text.rfind('.') {
        Some(dot) if !text[dot..].contains('/') => (&text[..dot], &text[dot..]),
        _ => (text, ""),
    };
    match stem.rfind('-') {
        Some(dash)
            if dash + 1 < stem.len() && stem[dash + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}{ext}", &stem[..dash])
        }
        _ => String::new(),
    }
}

/// What a strftime directive stands for in a name; `None` for one output names do not take.
fn directive_tokens(d: char) -> Option<Vec<Token>> {
    let lit = |s: &str| Token::Literal(s.to_owned());
    Some(match d {
        'Y' => vec![Token::Digits(4)],
        'm' | 'd' | 'H' | 'M' | 'S' | 'y' | 'I' | 'U' | 'W' | 'V' => vec![Token::Digits(2)],
        'j' => vec![Token::Digits(3)],
        'u' | 'w' => vec![Token::Digits(1)],
        's' | 'f' => vec![Token::Number],
        'e' => vec![Token::PaddedDay],
        'b' | 'B' | 'h' | 'a' | 'A' | 'p' | 'P' | 'Z' => vec![Token::Word],
        'z' => vec![Token::Offset],
        'F' => vec![
            Token::Digits(4),
            lit("-"),
            Token::Digits(2),
            lit("-"),
            Token::Digits(2),
        ],
        'T' => vec![
            Token::Digits(2),
            lit(":"),
            Token::Digits(2),
            lit(":"),
            Token::Digits(2),
        ],
        'R' => vec![Token::Digits(2), lit(":"), Token::Digits(2)],
        '%' => vec![lit("%")],
        _ => return None,
    })
}

/// Whether `text` is exactly what `tokens` describe.
fn match_tokens(tokens: &[Token], text: &str) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    let bytes = text.as_bytes();
    let fixed = |n: usize, ok: &dyn Fn(&[u8]) -> bool| {
        bytes.len() >= n && ok(&bytes[..n]) && match_tokens(rest, &text[n..])
    };
    let run = |ok: fn(&u8) -> bool| {
        let n = bytes.iter().take_while(|b| ok(b)).count();
        (1..=n).rev().any(|k| match_tokens(rest, &text[k..]))
    };
    match first {
        Token::Literal(l) => text.starts_with(l.as_str()) && match_tokens(rest, &text[l.len()..]),
        Token::Digits(n) => fixed(*n, &|b| b.iter().all(u8::is_ascii_digit)),
        Token::PaddedDay => fixed(2, &|b| {
            (b[0] == b' ' || b[0].is_ascii_digit()) && b[1].is_ascii_digit()
        }),
        Token::Offset => fixed(5, &|b| {
            matches!(b[0], b'+' | b'-') && b[1..].iter().all(u8::is_ascii_digit)
        }),
        Token::Number => run(u8::is_ascii_digit),
        Token::Word => run(u8::is_ascii_alphabetic),
    }
}

/// `path`, or, when it (or its `.partial`) exists, `path` with `-1`, `-2`, … before its
/// extension: never someone's earlier recording.
pub(crate) fn untaken(path: &Path) -> PathBuf {
    let taken = |p: &Path| p.exists() || super::file::partial_path(p).exists();
    if !taken(path) {
        return path.to_owned();
    }
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1u32..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{ext}")))
        .find(|p| !taken(p))
        .unwrap_or_else(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Zoned {
        s.parse().expect("zoned")
    }

    #[test]
    fn names_are_made_and_recognised() -> Result<(), String> {
        let t = Template::parse("/srv/rec/front/%Y-%m-%d/%H%M%S.mp4")?;
        let name = t.expand(&at("2026-11-24T08:09:10[UTC]"));
        assert_eq!(name, PathBuf::from("/srv/rec/front/2026-11-24/080910.mp4"));
        assert!(t.matches(&name));
        assert!(t.matches(Path::new("/srv/rec/front/2026-11-24/080910-2.mp4")));
        for other in [
            "/srv/rec/front/2026-11-24/080910.mp4.partial",
            "/srv/rec/front/2026-11-24/notes.txt",
            "/srv/rec/side/2026-11-24/080910.mp4",
            "/srv/rec/front/2026-11-24/08091.mp4",
        ] {
            assert!(!t.matches(Path::new(other)), "{other}");
        }
        assert_eq!(t.root(), Path::new("/srv/rec/front"));
        assert_eq!(t.depth(), 2);
        Ok(())
    }

    #[test]
    fn relative_templates_and_words() -> Result<(), String> {
        let t = Template::parse("cam-%F_%T_%b.mp4")?;
        let name = t.expand(&at("2026-11-24T08:09:10[UTC]"));
        assert_eq!(name, PathBuf::from("cam-2026-11-24_08:09:10_Nov.mp4"));
        assert!(t.matches(&name));
        assert_eq!((t.root(), t.depth()), (Path::new("."), 1));
        Ok(())
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(Template::parse("plain.mp4").is_err());
        assert!(Template::parse("x%q.mp4").is_err());
        assert!(Template::parse("x%").is_err());
    }

    #[test]
    fn taken_names_get_a_suffix() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("a.mp4");
        assert_eq!(untaken(&p), p);
        std::fs::write(&p, b"")?;
        std::fs::write(dir.path().join("a-1.mp4.partial"), b"")?;
        assert_eq!(untaken(&p), dir.path().join("a-2.mp4"));
        Ok(())
    }
}
