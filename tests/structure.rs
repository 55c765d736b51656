//! The code's own limits, held by a test so that they cannot slip again: no function over 100
//! lines, no file over 600, no line over 100 columns but where a string literal (which rustfmt
//! cannot break) makes it so. Read from the sources as rustfmt leaves them: a function ends at
//! the first `}` at its own indentation.

use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 100;
const MAX_FILE_LINES: usize = 600;
const MAX_COLUMNS: usize = 100;

/// Every `.rs` file of the crate: the library, the binary, the tests and the benchmarks.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = ["src", "tests", "bench"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "node_modules") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `line` without its string literals' contents (plain and raw, on this line).
fn without_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'r' if chars.peek().is_some_and(|&n| n == '#' || n == '"') => {
                let mut hashes = 0;
                while chars.next_if_eq(&'#').is_some() {
                    hashes += 1;
                }
                if chars.next_if_eq(&'"').is_none() {
                    out.push('r');
                    continue;
                }
                let close: String = std::iter::once('"')
                    .chain((0..hashes).map(|_| '#'))
                    .collect();
                let rest: String = chars.by_ref().collect();
                let end = rest.find(&close).map_or(rest.len(), |i| i + close.len());
                out.push_str("r\"\"");
                out.push_str(&without_strings(&rest[end..]));
                return out;
            }
            '"' => {
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('"', '\'') or a lifetime: copy it, so that a quote in it does
                // not open a string.
                out.push(c);
                let mut lit = String::new();
                while let Some(&n) = chars.peek() {
                    lit.push(n);
                    chars.next();
                    if n == '\'' || lit.len() > 4 || (!n.is_alphanumeric() && n != '\\') {
                        break;
                    }
                }
                out.push_str(&lit);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `(name, first line, lines)` of every function with a body in `text`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let Some(at) = trimmed.find("fn ") else {
            continue;
        };
        let head = &trimmed[..at];
        let qualifiers = head.split_whitespace().all(|w| {
            matches!(w, "pub" | "const" | "async" | "unsafe" | "extern") || w.starts_with("pub(")
        });
        if !qualifiers || trimmed.ends_with(';') {
            continue;
        }
        let name: String = trimmed[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = (i..lines.len()).find(|&j| lines[j] == close) {
            found.push((name, i + 1, end - i + 1));
        }
    }
    found
}

#[test]
fn no_file_function_or_line_is_past_its_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = sources();
    assert!(files.len() > 100, "found only {} sources", files.len());
    let mut over = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("a source reads");
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let count = text.lines().count();
        if count > MAX_FILE_LINES {
            over.push(format!("{name}: {count} lines (at most {MAX_FILE_LINES})"));
        }
        for (i, line) in text.lines().enumerate() {
            let columns = without_strings(line).chars().count();
            if line.chars().count() > MAX_COLUMNS && columns > MAX_COLUMNS {
                over.push(format!("{name}:{}: {columns} columns", i + 1));
            }
        }
        for (function, at, lines) in functions(&text) {
            if lines > MAX_FN_LINES {
                over.push(format!("{name}:{at}: fn {function} is {lines} lines"));
            }
        }
    }
    assert!(over.is_empty(), "past the limits:\n{}", over.join("\n"));
}

/// The checks themselves, on code written to break them.
#[test]
fn the_checks_see_what_they_check() {
    let long_fn = format!(
        "    pub(crate) async fn f() {{\n{}    }}\n",
        "        x;\n".repeat(99)
    );
    assert_eq!(functions(&long_fn), [("f".to_owned(), 1, 101)]);
    assert!(functions("    fn declared(&self);\n").is_empty());
    let code = format!("let x = {};", "y + ".repeat(30));
    assert!(without_strings(&code).chars().count() > MAX_COLUMNS);
    let message = format!(
        "let s = \"{}\"; let c = '\"'; r#\"{}\"#",
        "m".repeat(120),
        "q".repeat(50)
    );
    assert_eq!(
        without_strings(&message),
        "let s = \"\"; let c = '\"'; r\"\""
    );
    assert_eq!(
        without_strings("fn f<'a>(s: &'a str) -> char { 'x' }"),
        "fn f<'a>(s: &'a str) -> char { 'x' }"
    );
}
