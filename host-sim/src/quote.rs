//! Quoting user input in error messages.
//!
//! A message shows at most [`MAX_QUOTED`] characters of whatever the user wrote, so that a
//! malformed 10 MB field gives a one-line error, not a 10 MB one. Every parser of user files
//! quotes through [`quote`].

/// The most characters of user input a message shows.
pub const MAX_QUOTED: usize = 60;

/// `text` in backticks, for an error message: at most [`MAX_QUOTED`] characters, cut with `…`
/// and followed by the full length when longer. Control characters and the byte-order mark,
/// which would be invisible or break the line, are shown escaped (`\r`, `\u{feff}`).
pub fn quote(text: &str) -> String {
    let (cut, rest) = cut(text);
    format!("`{cut}`{rest}")
}

/// [`quote`] without the backticks, for text that is not a single token (a list of names).
pub fn shorten(text: &str) -> String {
    let (cut, rest) = cut(text);
    format!("{cut}{rest}")
}

/// The most characters shown of a message a library wrote (which may embed user input, such
/// as a tensor name).
pub const MAX_LIBRARY_MESSAGE: usize = 4 * MAX_QUOTED;

/// A library's error message made safe for a one-line error: control characters escaped, cut
/// at [`MAX_LIBRARY_MESSAGE`] characters like [`shorten`].
pub fn library_message(error: &impl std::fmt::Display) -> String {
    let (cut, rest) = cut_at(&error.to_string(), MAX_LIBRARY_MESSAGE);
    format!("{cut}{rest}")
}

/// The first [`MAX_QUOTED`] characters, escaped, with `…` when cut; and ` (N characters)`
/// when cut, else nothing.
fn cut(text: &str) -> (String, String) {
    cut_at(text, MAX_QUOTED)
}

fn cut_at(text: &str, max: usize) -> (String, String) {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() || c == '\u{feff}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    let total = text.chars().count();
    if total > max {
        out.push('…');
        (out, format!(" ({total} characters)"))
    } else {
        (out, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quote(""), "``");
        assert_eq!(quote("abc"), "`abc`");
        let sixty = "x".repeat(MAX_QUOTED);
        assert_eq!(quote(&sixty), format!("`{sixty}`"));
    }

    #[test]
    fn long_text_is_cut_and_measured() {
        let long = "é".repeat(10_000_000);
        let q = quote(&long);
        assert_eq!(
            q,
            format!("`{}…` (10000000 characters)", "é".repeat(MAX_QUOTED))
        );
        let q = quote(&"y".repeat(MAX_QUOTED + 1));
        assert!(q.ends_with("…` (61 characters)"), "{q}");
    }

    #[test]
    fn shorten_has_no_backticks() {
        assert_eq!(shorten("a b"), "a b");
        let s = shorten(&"z ".repeat(100));
        assert!(s.ends_with("… (200 characters)"), "{s}");
        assert_eq!(s.chars().filter(|&c| c == 'z').count(), MAX_QUOTED / 2);
    }

    #[test]
    fn library_messages_stay_on_one_line() {
        let m = library_message(&"invalid offset for tensor `\nn.bias`");
        assert_eq!(m, "invalid offset for tensor `\\nn.bias`");
        assert!(library_message(&"x".repeat(1000)).ends_with("… (1000 characters)"));
    }

    #[test]
    fn invisible_characters_are_escaped() {
        assert_eq!(quote("a\rb\u{feff}c"), "`a\\rb\\u{feff}c`");
    }
}
