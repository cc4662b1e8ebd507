//! `flotilla workflow …` and `flotilla run …`: workflows and their runs from the command line.

use super::api::Api;
use super::commands::{Watched, segment, watch};
use super::{ClientError, Exit, output};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Get {
        id: String,
        /// A past version instead of the newest.
        #[arg(long)]
        version: Option<i32>,
        #[arg(long)]
        json: bool,
    },
    /// Checks a workflow file (an export, or `{"definition": …}`) with the server's rules;
    /// exit 0 when it could run, 1 with every issue listed otherwise.
    Validate {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Starts a run of the newest version (or `--version`).
    Run {
        id: String,
        /// An input as `name=text` (repeat for more).
        #[arg(long = "input", short = 'i', value_name = "NAME=TEXT")]
        inputs: Vec<String>,
        /// An input as `name=<JSON>`, for numbers, booleans and objects.
        #[arg(long = "input-json", value_name = "NAME=JSON")]
        json_inputs: Vec<String>,
        #[arg(long)]
        version: Option<i32>,
        /// Follow it to the end with a progress bar; the exit code says how it ended.
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    Get {
        id: String,
        #[arg(long)]
        json: bool,
    },
    Watch {
        id: String,
        #[arg(long)]
        json: bool,
    },
    Cancel {
        id: String,
    },
    /// Queues a failed or blocked node again.
    Retry {
        id: String,
        key: String,
    },
    /// Approves a waiting approval node.
    Approve {
        id: String,
        key: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Rejects a waiting approval node (the run fails).
    Reject {
        id: String,
        key: String,
        #[arg(long)]
        comment: Option<String>,
    },
}

fn run_watched(id: &str) -> Watched {
    Watched {
        path: format!("/api/v1/runs/{}", segment(id)),
        run_id: id.to_owned(),
        items: "nodes",
        block: output::run_block,
    }
}

/// `name=value` pairs into an inputs object: text as given, or parsed as JSON.
fn parse_inputs(text: &[String], as_json: &[String]) -> Result<Map<String, Value>, ClientError> {
    let mut out = Map::new();
    let split = |pair: &str| {
        pair.split_once('=')
            .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
            .ok_or_else(|| ClientError::Usage(format!("an input is NAME=VALUE, not '{pair}'")))
    };
    for pair in text {
        let (k, v) = split(pair)?;
        out.insert(k, Value::String(v));
    }
    for pair in as_json {
        let (k, v) = split(pair)?;
        let value = serde_json::from_str(&v)
            .map_err(|e| ClientError::Usage(format!("input {k} is not JSON: {e}")))?;
        out.insert(k, value);
    }
    Ok(out)
}

pub async fn workflow(api: &Api, command: WorkflowCommand) -> Result<Exit, ClientError> {
    match command {
        WorkflowCommand::List { json } => {
            let list = api.get("/api/v1/workflows").await?;
            output::list(&list, json, |w| {
                format!(
                    "{}  {:<5}  v{:<3}  {:>4} nodes  {}",
                    output::field(w, "id"),
                    output::field(w, "state"),
                    output::field(w, "version"),
                    output::field(w, "nodes"),
                    output::field(w, "name")
                )
            });
            Ok(Exit::Done)
        }
        WorkflowCommand::Get { id, version, json } => {
            let query = version.map_or_else(String::new, |v| format!("?version={v}"));
            let w = api
                .get(&format!("/api/v1/workflows/{}{query}", segment(&id)))
                .await?;
            if json {
                output::json(&w);
            } else {
                println!(
                    "{}  {}  v{} of {}  {}",
                    output::field(&w, "id"),
                    output::field(&w, "state"),
                    output::field(&w, "version"),
                    output::field(&w, "latest_version"),
                    output::field(&w, "name")
                );
                for n in w["definition"]["nodes"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<12} {}",
                        output::field(n, "key"),
                        output::field(n, "kind")
                    );
                }
                for i in w["issues"].as_array().into_iter().flatten() {
                    println!("  ! {}", output::issue_line(i));
                }
            }
            Ok(Exit::Done)
        }
        WorkflowCommand::Validate { file, json } => {
            let text = std::fs::read_to_string(&file)?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| ClientError::Usage(format!("{} is not JSON: {e}", file.display())))?;
            let (status, answer) = api.post_answer("/api/v1/workflows/validate", &body).await?;
            let issues = answer["error"]["issues"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if json {
                output::json(&json!({ "valid": status == 200, "issues": issues }));
            } else if status == 200 {
                println!("{}: valid", file.display());
            } else if issues.is_empty() {
                println!(
                    "{}: {}",
                    file.display(),
                    output::field(&answer["error"], "message")
                );
            } else {
                for i in &issues {
                    println!("{}: {}", file.display(), output::issue_line(i));
                }
            }
            Ok(if status == 200 {
                Exit::Done
            } else {
                Exit::Failed
            })
        }
        WorkflowCommand::Run {
            id,
            inputs,
            json_inputs,
            version,
            watch: follow_it,
            json,
        } => {
            let inputs = parse_inputs(&inputs, &json_inputs)?;
            let started = api
                .post(
                    &format!("/api/v1/workflows/{}/runs", segment(&id)),
                    Some(json!({ "inputs": inputs, "version": version })),
                )
                .await?;
            let run = output::field(&started, "id");
            if follow_it {
                return watch(api, run_watched(&run), json).await;
            }
            if json {
                output::json(&started);
            } else {
                println!("{run}");
            }
            Ok(Exit::Done)
        }
    }
}

pub async fn run(api: &Api, command: RunCommand) -> Result<Exit, ClientError> {
    let (id, path, body) = match command {
        RunCommand::Get { id, json } => {
            let r = api.get(&format!("/api/v1/runs/{}", segment(&id))).await?;
            if json {
                output::json(&r);
            } else {
                print!("{}", output::run_block(&r));
            }
            return Ok(Exit::Done);
        }
        RunCommand::Watch { id, json } => return watch(api, run_watched(&id), json).await,
        RunCommand::Cancel { id } => (id, "cancel".to_owned(), None),
        RunCommand::Retry { id, key } => (id, format!("nodes/{}/retry", segment(&key)), None),
        RunCommand::Approve { id, key, comment } => (
            id,
            format!("nodes/{}/approve", segment(&key)),
            Some(json!({ "comment": comment })),
        ),
        RunCommand::Reject { id, key, comment } => (
            id,
            format!("nodes/{}/reject", segment(&key)),
            Some(json!({ "comment": comment })),
        ),
    };
    api.post(&format!("/api/v1/runs/{}/{path}", segment(&id)), body)
        .await?;
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_text_unless_asked_for_json() {
        let got = parse_inputs(
            &["topic=tides=high".into()],
            &["depth=3".into(), "flag=true".into()],
        )
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"topic": "tides=high", "depth": 3, "flag": true})
        );
        assert!(matches!(
            parse_inputs(&["nope".into()], &[]),
            Err(ClientError::Usage(_))
        ));
        assert!(matches!(
            parse_inputs(&[], &["x={".into()]),
            Err(ClientError::Usage(_))
        ));
    }
}
