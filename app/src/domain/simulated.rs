//! The deterministic `simulated` model: what it plans and answers is derived from the text alone,
//! so the offline demo and the tests exercise real DAGs without any LLM service. It is always
//! labelled as simulated wherever it shows up.
//!
//! Planning: one subtask per list item or sentence; an item that starts with "then" (or "after
//! that", "finally") depends on the one before it, others run in parallel; the capability comes
//! from keywords. Directives for demos and tests, in a subtask's text: `[fail]` fails every
//! attempt, `[flaky]` fails the first attempt only, `[hang]` never answers, `[panic]` panics (a
//! client bug); in a task's text, `[cycle]` makes the planner
//! answer with a cyclic plan (which the engine must refuse and fall back from).

use super::plan::{PlanDraft, SubtaskDraft};

const KEYWORDS: [(&str, &[&str]); 6] = [
    (
        "web_scraping",
        &[
            "scrape", "crawl", "website", "web page", "webpage", "download",
        ],
    ),
    (
        "database_operations",
        &["database", "sql", "query", "table", "postgres"],
    ),
    (
        "api_integration",
        &["api", "endpoint", "webhook", "http", "integrat"],
    ),
    (
        "file_processing",
        &["file", "csv", "pdf", "document", "spreadsheet", "parse"],
    ),
    (
        "code_generation",
        &[
            "code",
            "implement",
            "function",
            "script",
            "program",
            "refactor",
        ],
    ),
    (
        "data_analysis",
        &["analy", "statistic", "chart", "report", "summar", "trend"],
    ),
];

/// The capability a piece of text asks for (first keyword match; `data_analysis` otherwise).
pub fn capability_for(text: &str) -> &'static str {
    let lower = text.to_lowercase();
    KEYWORDS
        .iter()
        .find(|(_, words)| words.iter().any(|w| lower.contains(w)))
        .map_or("data_analysis", |(cap, _)| cap)
}

/// Splits a task into items: list lines if there are any, sentences otherwise; ", then" also
/// starts a new (dependent) item.
fn items(description: &str) -> Vec<String> {
    let is_bullet = |l: &str| {
        let l = l.trim_start();
        l.starts_with("- ")
            || l.starts_with("* ")
            || l.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let raw: Vec<String> = if description.lines().filter(|l| is_bullet(l)).count() >= 2 {
        description
            .lines()
            .filter(|l| is_bullet(l))
            .map(|l| {
                let l = l.trim_start();
                l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned()
            })
            .collect()
    } else {
        description
            .split(['.', '!', '?', ';', '\n'])
            .map(str::to_owned)
            .collect()
    };
    raw.iter()
        .flat_map(|item| {
            let mut parts = Vec::new();
            let mut rest = item.as_str();
            while let Some(pos) = find_ascii_ignore_case(rest, ", then ") {
                parts.push(rest[..pos].to_owned());
                rest = &rest[pos + 2..];
            }
            parts.push(rest.to_owned());
            parts
        })
        .map(|s| s.trim().to_owned())
        .filter(|s| s.chars().filter(|c| c.is_alphanumeric()).count() >= 3)
        .collect()
}

/// The byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case. Offsets are found
/// in the text itself, never in a case-mapped copy, whose lengths can differ (U+212A KELVIN
/// SIGN lowercases to one byte from three): an ASCII match always starts on a char boundary.
fn find_ascii_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    (0..=h.len().checked_sub(n.len())?).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn starts_dependent(item: &str) -> bool {
    let lower = item.to_lowercase();
    ["then ", "after that", "afterwards", "finally", "next,"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// The plan the simulated model proposes for a task.
pub fn plan(description: &str, priority: i16) -> PlanDraft {
    let items = items(description);
    let items = if items.is_empty() {
        vec![description.trim().to_owned()]
    } else {
        items
    };
    let mut subtasks: Vec<SubtaskDraft> = items
        .iter()
        .take(super::plan::MAX_NODES)
        .enumerate()
        .map(|(i, text)| SubtaskDraft {
            key: format!("s{}", i + 1),
            description: text.clone(),
            required_capabilities: vec![capability_for(text).to_owned()],
            depends_on: if i > 0 && starts_dependent(text) {
                vec![format!("s{i}")]
            } else {
                vec![]
            },
            priority: priority.clamp(0, 10),
        })
        .collect();
    if description.contains("[cycle]") && subtasks.len() >= 2 {
        let last = subtasks.len();
        subtasks[0].depends_on.push(format!("s{last}"));
        if !subtasks[last - 1].depends_on.iter().any(|d| d == "s1") {
            subtasks[last - 1].depends_on.push("s1".into());
        }
    } else if description.contains("[cycle]") {
        subtasks[0].depends_on.push("s1".into());
    }
    PlanDraft { subtasks }
}

/// Whether the subtask's text asks the simulated model never to answer (`[hang]`).
pub fn hangs(description: &str) -> bool {
    description.contains("[hang]")
}

/// A simulated answer for a subtask, or the failure the text asks for.
pub fn execute(description: &str, context: &[String], attempt: i32) -> Result<String, String> {
    // A model client with a bug: the engine must turn it into a failed attempt.
    if description.contains("[panic]") {
        panic!("simulated panic while running \"{description}\"");
    }
    if description.contains("[fail]") {
        return Err(format!("simulated failure of \"{description}\""));
    }
    if description.contains("[flaky]") && attempt <= 1 {
        return Err(format!(
            "simulated transient failure of \"{description}\" (attempt {attempt})"
        ));
    }
    let mut out = format!("[simulated] done: {description}");
    if !context.is_empty() {
        out.push_str(&format!(
            " (using {} prerequisite result(s))",
            context.len()
        ));
    }
    Ok(out)
}

/// Token counts the simulated model reports: about one per word, deterministic.
pub fn tokens(text: &str) -> i64 {
    i64::try_from(text.split_whitespace().count())
        .unwrap_or(i64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::CAPABILITIES;
    use crate::domain::plan::{PlanError, ValidatedPlan};
    use proptest::prelude::*;

    #[test]
    fn case_mapped_letters_neither_panic_nor_move_the_split() {
        // U+212A and U+212B lowercase to shorter text, U+0130 and U+023A to longer.
        for odd in ['\u{212A}', '\u{212B}', '\u{0130}', '\u{023A}'] {
            let p = plan(&format!("Count the {odd}, then email the totals"), 0);
            let texts: Vec<_> = p.subtasks.iter().map(|s| s.description.as_str()).collect();
            assert_eq!(
                texts,
                [format!("Count the {odd}").as_str(), "then email the totals"]
            );
            assert_eq!(p.subtasks[1].depends_on, ["s1"]);
        }
        let p = plan("Measure \u{212A}, THEN write the report about it", 0);
        assert_eq!(p.subtasks.len(), 2);
    }

    proptest! {
        /// Arbitrary Unicode (not just ASCII), with the separators the planner looks for mixed
        /// in: never a panic, and the plan is always one the rules accept.
        #[test]
        fn any_description_yields_a_valid_plan(
            parts in proptest::collection::vec(
                prop_oneof![any::<String>(), Just(", then ".to_owned()), Just(", THEN ".to_owned()),
                            Just("\n- ".to_owned()), Just(". ".to_owned()), Just("[cycle]".to_owned()),
                            Just("\u{212A}".to_owned()), Just("\u{0130}".to_owned())],
                0..12)
        ) {
            let description: String = parts.concat();
            let p = plan(&description, 5);
            prop_assert!(!p.subtasks.is_empty());
            if !description.contains("[cycle]")
                && description.chars().all(crate::domain::text::allowed_in_prose)
                && !description.trim().is_empty()
                && description.chars().count() <= crate::domain::plan::MAX_DESCRIPTION
            {
                let parsed = ValidatedPlan::parse(p, &CAPABILITIES);
                prop_assert!(parsed.is_ok(), "{:?}", parsed);
            }
        }
    }

    #[test]
    fn sentences_become_parallel_subtasks_and_then_makes_a_dependency() {
        let p = plan(
            "Scrape the pricing website. Query the sales database, then analyse the trends.",
            3,
        );
        let keys: Vec<_> = p
            .subtasks
            .iter()
            .map(|s| (s.key.as_str(), s.depends_on.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("s1", vec![]),
                ("s2", vec![]),
                ("s3", vec!["s2".to_owned()])
            ]
        );
        let caps: Vec<_> = p
            .subtasks
            .iter()
            .map(|s| s.required_capabilities[0].as_str())
            .collect();
        assert_eq!(
            caps,
            ["web_scraping", "database_operations", "data_analysis"]
        );
        assert!(p.subtasks.iter().all(|s| s.priority == 3));
        assert!(ValidatedPlan::parse(p, &CAPABILITIES).is_ok());
    }

    #[test]
    fn list_items_become_subtasks() {
        let p = plan(
            "Do this:\n- parse the CSV file\n- then write a summary report\n- call the API",
            0,
        );
        assert_eq!(p.subtasks.len(), 3);
        assert_eq!(p.subtasks[1].depends_on, vec!["s1".to_owned()]);
        assert_eq!(
            p.subtasks[0].required_capabilities,
            vec!["file_processing".to_owned()]
        );
    }

    #[test]
    fn the_cycle_directive_yields_a_plan_the_rules_refuse() {
        let p = plan("Collect the numbers. Then chart them [cycle].", 0);
        assert!(matches!(
            ValidatedPlan::parse(p, &CAPABILITIES),
            Err(PlanError::Cycle(_))
        ));
    }

    #[test]
    fn execution_is_deterministic_and_obeys_failure_directives() {
        assert_eq!(execute("x", &[], 1), execute("x", &[], 1));
        assert!(execute("do it [fail]", &[], 3).is_err());
        assert!(execute("do it [flaky]", &[], 1).is_err());
        assert!(execute("do it [flaky]", &[], 2).is_ok());
        assert!(
            execute("y", &["a".into()], 1)
                .unwrap()
                .contains("1 prerequisite")
        );
    }
}
