//! Text from outside, checked before anything stores it: within its length, and free of the
//! characters no field keeps (NUL, which Postgres refuses in text, and the other control
//! characters; line breaks and tabs only where a field holds prose).

/// Whether `c` may appear in a field that holds prose (descriptions, prompts).
pub fn allowed_in_prose(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t' | '\r')
}

/// A one-line field (names, models): trimmed, 1 to `max` characters, no control characters.
pub fn one_line(field: &str, raw: &str, max: usize) -> Result<String, String> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(format!("{field} must be 1 to {max} characters (got {n})"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// A prose field: at most `max` characters, no control characters but line breaks and tabs.
pub fn prose(field: &str, raw: &str, max: usize) -> Result<String, String> {
    let n = raw.chars().count();
    if n > max {
        return Err(format!(
            "{field} must be at most {max} characters (got {n})"
        ));
    }
    if !raw.chars().all(allowed_in_prose) {
        return Err(format!(
            "{field} must not contain control characters (line breaks and tabs are fine)"
        ));
    }
    Ok(raw.to_owned())
}

/// The rules above as ECMA-262 regular expressions, for the OpenAPI document: a string
/// matches exactly when the validator accepts it (trimming included), so a fuzzer reading the
/// document neither sends "valid" input we refuse nor "invalid" input we take.
pub mod pattern {
    /// What `str::trim` removes: Unicode `White_Space`.
    pub const WS: &str =
        r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
    /// `char::is_control`, refused in one-line fields.
    pub const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
    /// Controls refused in prose (line breaks and tabs are allowed).
    pub const PROSE_CONTROL: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";

    /// Trimmed, `min..=max` characters (`max >= 2`), none of `forbidden`; with `empty_ok`, a
    /// blank string too.
    pub fn trimmed(min: usize, max: usize, forbidden: &str, empty_ok: bool) -> String {
        let edge = format!("[^{WS}{forbidden}]");
        let inner = format!("[^{forbidden}]");
        let body = if min <= 1 {
            format!("{edge}(?:{inner}{{0,{}}}{edge})?", max.saturating_sub(2))
        } else {
            format!(
                "{edge}{inner}{{{},{}}}{edge}",
                min - 2,
                max.saturating_sub(2)
            )
        };
        let body = if empty_ok {
            format!("(?:{body})?")
        } else {
            body
        };
        format!("^[{WS}]*{body}[{WS}]*$")
    }

    /// What [`super::one_line`] accepts.
    pub fn one_line(max: usize) -> String {
        trimmed(1, max, CONTROL, false)
    }

    /// What [`super::prose`] accepts (its length is `maxLength`).
    pub fn prose() -> String {
        format!("^[^{PROSE_CONTROL}]*$")
    }

    /// One of `words` (or blank when `empty_ok`), with surrounding whitespace trimmed.
    pub fn one_of(words: &[&str], empty_ok: bool) -> String {
        let alts: Vec<String> = words.iter().map(|w| w.replace('.', r"\.")).collect();
        let q = if empty_ok { "?" } else { "" };
        format!("^[{WS}]*(?:{}){q}[{WS}]*$", alts.join("|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_and_other_controls_are_refused_with_the_field_named() {
        let err = one_line("name", "a\u{0}b", 64).unwrap_err();
        assert!(err.starts_with("name "), "{err}");
        assert!(prose("system_prompt", "line\nnext\tcol", 100).is_ok());
        assert!(prose("system_prompt", "bell\u{7}", 100).is_err());
        assert!(one_line("name", "two\nlines", 64).is_err());
        assert!(one_line("name", "   ", 64).is_err());
        assert_eq!(one_line("name", "  ok  ", 64).as_deref(), Ok("ok"));
    }

    /// A pattern and its validator agree on every string: what the document promises is
    /// exactly what the server accepts.
    fn agrees(pattern: &str, accepts: impl Fn(&str) -> bool, s: &str) -> Result<(), TestCaseError> {
        let re = regex::Regex::new(pattern).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(re.is_match(s), accepts(s), "{:?} against {}", s, pattern);
        Ok(())
    }

    /// Strings made of the characters the rules turn on: spaces of every kind, controls,
    /// line breaks, letters.
    fn tricky() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            Just(' '),
            Just('\t'),
            Just('\n'),
            Just('\r'),
            Just('\u{b}'),
            Just('\u{85}'),
            Just('\u{a0}'),
            Just('\u{3000}'),
            Just('\u{2028}'),
            Just('\u{0}'),
            Just('\u{7}'),
            Just('\u{1c}'),
            Just('\u{9f}'),
            Just('a'),
            Just('Z'),
            Just('0'),
            Just('.'),
            Just('-'),
            Just('\u{212a}'),
            any::<char>(),
        ];
        proptest::collection::vec(c, 0..16).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn patterns_accept_exactly_what_the_validators_accept(s in tricky()) {
            agrees(&pattern::one_line(8), |s| one_line("f", s, 8).is_ok(), &s)?;
            agrees(&pattern::prose(), |s| prose("f", s, usize::MAX).is_ok(), &s)?;
            agrees(
                &pattern::trimmed(3, 12, pattern::PROSE_CONTROL, false),
                |s| {
                    let t = s.trim();
                    (3..=12).contains(&t.chars().count()) && t.chars().all(allowed_in_prose)
                },
                &s,
            )?;
            agrees(
                &pattern::trimmed(1, 8, pattern::CONTROL, true),
                |s| s.trim().is_empty() || one_line("f", s, 8).is_ok(),
                &s,
            )?;
            agrees(&pattern::one_of(&["a.b", "a"], true), |s| ["", "a.b", "a"].contains(&s.trim()), &s)?;
        }
    }

    proptest! {
        #[test]
        fn accepted_text_never_holds_a_nul_nor_exceeds_its_limit(s in "\\PC*|[\\x00-\\x1f]*", max in 1usize..50) {
            if let Ok(t) = one_line("f", &s, max) {
                prop_assert!(!t.contains('\0') && t.chars().count() <= max);
            }
            if let Ok(t) = prose("f", &s, max) {
                prop_assert!(!t.contains('\0') && t.chars().count() <= max);
            }
        }
    }
}
