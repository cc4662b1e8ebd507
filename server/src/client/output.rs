//! What the CLI prints: JSON for scripts (`--json`), aligned lines for people.

use serde_json::Value;

/// `v` as one line of JSON.
pub fn json(v: &Value) {
    println!("{v}");
}

/// A list response: the whole JSON for scripts, else one `line` per item.
pub fn list(v: &Value, as_json: bool, line: impl Fn(&Value) -> String) {
    if as_json {
        json(v);
    } else {
        for item in v["items"].as_array().into_iter().flatten() {
            println!("{}", line(item));
        }
    }
}

/// A text field, or `-`.
pub fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// One event as a line: seq, time, severity, type, subject, actor.
pub fn event_line(e: &Value) -> String {
    format!(
        "{:>8}  {}  {:<8}  {:<20}  {}  {}",
        field(e, "seq"),
        field(e, "at"),
        field(e, "severity"),
        field(e, "type"),
        field(e, "subject"),
        e["actor"].as_str().unwrap_or_default()
    )
}

/// A task as a block: id, status, description, then its subtasks.
pub fn task_block(t: &Value) -> String {
    let mut out = format!(
        "{}  {}  {}\n",
        field(t, "id"),
        field(t, "status"),
        field(t, "description")
    );
    for s in t["subtasks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:<6} {:<10} {}\n",
            field(s, "key"),
            field(s, "status"),
            field(s, "description")
        ));
    }
    if let Some(r) = t["result"].as_str() {
        out.push_str(&format!("result: {r}\n"));
    }
    if let Some(e) = t["error"].as_str() {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

/// A validation issue as one line: what it is about, then why.
pub fn issue_line(i: &Value) -> String {
    let t = &i["target"];
    let about = match t["kind"].as_str() {
        Some("node") => format!("node {}", field(t, "key")),
        Some("edge") => format!("edge {} → {}", field(t, "from"), field(t, "to")),
        Some("input") => format!("input {}", field(t, "name")),
        _ => "workflow".to_owned(),
    };
    format!("{about}: {} ({})", field(i, "message"), field(i, "code"))
}

/// A workflow run as a block: id, status, then each node with its state.
pub fn run_block(r: &Value) -> String {
    let mut out = format!(
        "{}  {}  workflow {} v{}\n",
        field(r, "id"),
        field(r, "status"),
        field(r, "workflow_id"),
        field(r, "workflow_version")
    );
    for n in r["nodes"].as_array().into_iter().flatten() {
        let state = if n["waiting_for_approval"] == true {
            "waiting for approval".to_owned()
        } else {
            field(n, "status")
        };
        out.push_str(&format!(
            "  {:<12} {:<9} {}\n",
            field(n, "key"),
            field(n, "kind"),
            state
        ));
    }
    if let Some(r) = r["result"].as_str() {
        out.push_str(&format!("result: {r}\n"));
    }
    if let Some(e) = r["error"].as_str() {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}
