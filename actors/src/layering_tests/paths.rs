//! Taking a source file apart: its comments and literals blanked out, its tokens, and
//! every path in it that reaches the crate root.

use super::Edge;

/// Every path in `source` that reaches the crate root, for a file whose module is
/// `depth` levels below the root.
pub(super) fn root_paths(source: &str, depth: usize) -> Vec<Edge> {
    let tokens = tokens(&blank_comments_and_literals(source));
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    let mut edges = Vec::new();
    // Inline modules open at this point, by the brace depth they opened at.
    let mut inline_modules: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match text(i) {
            "{" => braces += 1,
            "}" => {
                braces -= 1;
                if inline_modules.last() == Some(&braces) {
                    inline_modules.pop();
                }
            }
            "mod" if text(i + 2) == "{" => inline_modules.push(braces),
            "crate" if text(i + 1) == "::" => {
                edges.extend(names_after_root(&tokens, i + 2));
            }
            "super" if text(i + 1) == "::" && text(i.wrapping_sub(1)) != "::" => {
                let mut climbed = 0;
                let mut at = i;
                while text(at) == "super" && text(at + 1) == "::" {
                    climbed += 1;
                    at += 2;
                }
                if climbed >= depth + inline_modules.len() {
                    edges.extend(names_after_root(&tokens, at));
                }
                i = at;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    edges
}

/// The root's names a path takes from token `at` on: one name, or each first name of a
/// group `{a, b::c, d::{e, f}}`.
fn names_after_root(tokens: &[Token], at: usize) -> Vec<Edge> {
    let edge = |t: &Token| Edge {
        line: t.line,
        name: t.text.clone(),
    };
    let Some(first) = tokens.get(at) else {
        return Vec::new();
    };
    if first.text != "{" {
        return vec![edge(first)];
    }
    let mut edges = Vec::new();
    let mut nesting = 0usize;
    let mut expecting_name = true;
    for token in &tokens[at..] {
        match token.text.as_str() {
            "{" => {
                nesting += 1;
                expecting_name = nesting == 1;
            }
            "}" if nesting == 1 => break,
            "}" => nesting -= 1,
            "," if nesting == 1 => expecting_name = true,
            _ if expecting_name => {
                edges.push(edge(token));
                expecting_name = false;
            }
            _ => {}
        }
    }
    edges
}

#[derive(Debug)]
pub(super) struct Token {
    pub text: String,
    line: usize,
}

/// Identifiers, `::`, and every other character as a token of its own.
pub(super) fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            while i + 1 < chars.len() && (chars[i + 1].is_alphanumeric() || chars[i + 1] == '_') {
                i += 1;
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c != '\n' {
            tokens.push(Token {
                text: chars[start..=i].iter().collect(),
                line,
            });
        }
        i += 1;
    }
    tokens
}

/// `source` with its comments, string and character literals replaced by spaces (line
/// breaks kept, so that lines still count): a path in a doc comment or a message is no
/// dependency.
pub(super) fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut [char], from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let starts_token = |i: usize| i == 0 || !(at(i - 1).is_alphanumeric() || at(i - 1) == '_');
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        match (at(i), at(i + 1)) {
            ('/', '/') => {
                while i < chars.len() && at(i) != '\n' {
                    i += 1;
                }
            }
            ('/', '*') => {
                let mut nesting = 0;
                loop {
                    match (at(i), at(i + 1)) {
                        ('/', '*') => (nesting, i) = (nesting + 1, i + 2),
                        ('*', '/') => (nesting, i) = (nesting - 1, i + 2),
                        ('\0', _) => break,
                        _ => i += 1,
                    }
                    if nesting == 0 {
                        break;
                    }
                }
            }
            ('r', '"' | '#') | ('b', 'r') if starts_token(i) && raw_string_at(&chars, i) => {
                i = end_of_raw_string(&chars, i);
            }
            ('"', _) | ('b', '"') if at(i) == '"' || starts_token(i) => {
                i += if at(i) == 'b' { 2 } else { 1 };
                while i < chars.len() && at(i) != '"' {
                    i += if at(i) == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            ('\'', '\\') => {
                i += 3;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            }
            // A character literal; otherwise a lifetime or a label, which stays.
            ('\'', _) if at(i + 2) == '\'' => i += 3,
            _ => {
                i += 1;
                continue;
            }
        }
        blank(&mut out, start, i);
    }
    out.into_iter().collect()
}

/// Whether a raw string (`r"`, `r#"`, `br"`, `br#"`) starts at `i`.
fn raw_string_at(chars: &[char], i: usize) -> bool {
    let mut j = i + if chars[i] == 'b' { 2 } else { 1 };
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// Just past the raw string that starts at `i`.
fn end_of_raw_string(chars: &[char], i: usize) -> usize {
    let mut j = i + if chars[i] == 'b' { 2 } else { 1 };
    let mut hashes = 0;
    while chars[j] == '#' {
        hashes += 1;
        j += 1;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
            return j + 1 + hashes;
        }
        j += 1;
    }
    chars.len()
}
