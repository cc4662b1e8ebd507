//! The client subcommands and what each does.

use super::api::Api;
use super::credentials::{self, Credentials};
use super::{ClientError, Exit, follow, output};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Log in to a server and store an API token for the other commands (mode 600).
    Login {
        /// The server, e.g. http://127.0.0.1:3000.
        #[arg(long, env = "FLOTILLA_URL")]
        url: String,
        #[arg(long)]
        username: String,
        /// Read from FLOTILLA_PASSWORD, else the first line of standard input.
        #[arg(long, env = "FLOTILLA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Tasks: submit, list, get, watch, cancel.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Subtasks: retry a failed one.
    #[command(subcommand)]
    Subtask(SubtaskCommand),
    /// Agents: list, get, pause, resume, terminate.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Workflows: list, get, validate a file, run.
    #[command(subcommand)]
    Workflow(super::workflow::WorkflowCommand),
    /// Workflow runs: get, watch, cancel, retry a node, approve or reject an approval.
    #[command(subcommand)]
    Run(super::workflow::RunCommand),
    /// Events: the stored history, or `--follow` the live stream.
    Events {
        #[arg(long)]
        follow: bool,
        /// Only events after this seq.
        #[arg(long)]
        after: Option<i64>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    Submit {
        description: String,
        #[arg(long)]
        priority: Option<i64>,
        /// Follow it to the end with a progress bar; the exit code says how it ended.
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
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
}

#[derive(Subcommand, Debug)]
pub enum SubtaskCommand {
    Retry { id: String },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Get {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Adds an agent to the fleet.
    Spawn {
        name: String,
        /// A capability it has (repeat for more), e.g. `--capability code_generation`.
        #[arg(long = "capability", short = 'c', required = true)]
        capabilities: Vec<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        system_prompt: Option<String>,
        /// The agent that spawns it.
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Terminate {
        id: String,
    },
}

/// Runs a client command; the exit code says how it went.
pub async fn run(command: ClientCommand) -> Exit {
    match execute(command).await {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("flotilla: {e}");
            e.exit()
        }
    }
}

/// A path segment taken from the command line, percent-encoded.
pub(super) fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn execute(command: ClientCommand) -> Result<Exit, ClientError> {
    if let ClientCommand::Login {
        url,
        username,
        password,
    } = command
    {
        return login(url, username, password).await;
    }
    let api = Api::new(&credentials::load()?);
    match command {
        ClientCommand::Login { .. } => Ok(Exit::Usage),
        ClientCommand::Task(t) => task(&api, t).await,
        ClientCommand::Subtask(SubtaskCommand::Retry { id }) => {
            api.post(&format!("/api/v1/subtasks/{}/retry", segment(&id)), None)
                .await?;
            Ok(Exit::Done)
        }
        ClientCommand::Agent(a) => agent(&api, a).await,
        ClientCommand::Workflow(w) => super::workflow::workflow(&api, w).await,
        ClientCommand::Run(r) => super::workflow::run(&api, r).await,
        ClientCommand::Events {
            follow,
            after,
            kind,
            task,
            agent,
            json,
        } => {
            let mut filter = String::new();
            for (k, v) in [("type", kind), ("task_id", task), ("agent_id", agent)] {
                if let Some(v) = v {
                    filter.push_str(&format!("&{k}={}", segment(&v)));
                }
            }
            events(&api, follow, after, filter, json).await
        }
    }
}

async fn login(
    url: String,
    username: String,
    password: Option<String>,
) -> Result<Exit, ClientError> {
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let url = url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap_or_default();
    let unreachable = |e: reqwest::Error| ClientError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    };
    let res = http
        .post(format!("{url}/api/v1/session"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .map_err(unreachable)?;
    if !res.status().is_success() {
        let body: Value = res.json().await.unwrap_or(Value::Null);
        return Err(ClientError::Unauthorised(
            body["error"]["message"]
                .as_str()
                .unwrap_or("login refused")
                .to_owned(),
        ));
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into());
    let created: Value = http
        .post(format!("{url}/api/v1/tokens"))
        .json(&json!({ "name": format!("cli on {host}") }))
        .send()
        .await
        .map_err(unreachable)?
        .json()
        .await
        .map_err(unreachable)?;
    let token = created["token"]
        .as_str()
        .ok_or_else(|| ClientError::Refused("the server issued no token".into()))?;
    let path = credentials::save(&Credentials {
        url,
        token: token.to_owned(),
    })?;
    eprintln!("logged in as {username}; token saved to {}", path.display());
    Ok(Exit::Done)
}

async fn task(api: &Api, command: TaskCommand) -> Result<Exit, ClientError> {
    match command {
        TaskCommand::Submit {
            description,
            priority,
            watch: follow_it,
            json,
        } => {
            let created = api
                .post(
                    "/api/v1/tasks",
                    Some(json!({ "description": description, "priority": priority })),
                )
                .await?;
            let id = output::field(&created, "id");
            if follow_it {
                return watch(api, Watched::task(&id), json).await;
            }
            if json {
                output::json(&created);
            } else {
                println!("{id}");
            }
            Ok(Exit::Done)
        }
        TaskCommand::List { status, json } => {
            let query = status.map_or_else(String::new, |s| format!("?status={}", segment(&s)));
            let list = api.get(&format!("/api/v1/tasks{query}")).await?;
            output::list(&list, json, |t| {
                format!(
                    "{}  {:<11}  {}/{}  {}",
                    output::field(t, "id"),
                    output::field(t, "status"),
                    output::field(t, "subtasks_completed"),
                    output::field(t, "subtasks_total"),
                    output::field(t, "description")
                )
            });
            Ok(Exit::Done)
        }
        TaskCommand::Get { id, json } => {
            let t = api.get(&format!("/api/v1/tasks/{}", segment(&id))).await?;
            if json {
                output::json(&t);
            } else {
                print!("{}", output::task_block(&t));
            }
            Ok(Exit::Done)
        }
        TaskCommand::Watch { id, json } => watch(api, Watched::task(&id), json).await,
        TaskCommand::Cancel { id } => {
            api.post(&format!("/api/v1/tasks/{}/cancel", segment(&id)), None)
                .await?;
            Ok(Exit::Done)
        }
    }
}

/// What `watch` follows: a task (its subtasks) or a workflow run (its nodes).
pub(super) struct Watched {
    pub path: String,
    pub run_id: String,
    /// The field holding the DAG's nodes, and what the bar calls them.
    pub items: &'static str,
    pub block: fn(&Value) -> String,
}

impl Watched {
    pub fn task(id: &str) -> Self {
        Self {
            path: format!("/api/v1/tasks/{}", segment(id)),
            run_id: id.to_owned(),
            items: "subtasks",
            block: output::task_block,
        }
    }
}

/// Follows a task or run to its end on the event stream (no polling): a progress bar of
/// finished nodes, then the run; exit 0 if it completed, 1 otherwise.
pub(super) async fn watch(api: &Api, what: Watched, json: bool) -> Result<Exit, ClientError> {
    // Subscribe first, then read the run: nothing between the two is missed.
    let mut events = follow::spawn(api, format!("&task_id={}", segment(&what.run_id)), None);
    let bar = indicatif::ProgressBar::new(0);
    let template = format!(
        "{{spinner}} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {}",
        what.items
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let run = api.get(&what.path).await?;
        let nodes = run[what.items].as_array().map_or(0, Vec::len);
        let done = run[what.items]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| matches!(s["status"].as_str(), Some("completed" | "skipped")))
            .count();
        bar.set_length(nodes as u64);
        bar.set_position(done as u64);
        bar.set_message(output::field(&run, "status"));
        let status = run["status"].as_str().unwrap_or_default();
        if matches!(status, "completed" | "failed" | "cancelled") {
            bar.finish_and_clear();
            if json {
                output::json(&run);
            } else {
                print!("{}", (what.block)(&run));
            }
            return Ok(if status == "completed" {
                Exit::Done
            } else {
                Exit::Failed
            });
        }
        match events.recv().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(stream_ended(api)),
        }
    }
}

async fn agent(api: &Api, command: AgentCommand) -> Result<Exit, ClientError> {
    let (id, verb) = match command {
        AgentCommand::List { json } => {
            let list = api.get("/api/v1/agents").await?;
            output::list(&list, json, |a| {
                format!(
                    "{}  {:<10}  {:<20}  {}",
                    output::field(a, "id"),
                    output::field(a, "state"),
                    output::field(a, "name"),
                    a["capabilities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            });
            return Ok(Exit::Done);
        }
        AgentCommand::Get { id, json } => {
            let a = api.get(&format!("/api/v1/agents/{}", segment(&id))).await?;
            if json {
                output::json(&a);
            } else {
                println!(
                    "{}  {}  {}",
                    output::field(&a, "id"),
                    output::field(&a, "state"),
                    output::field(&a, "name")
                );
            }
            return Ok(Exit::Done);
        }
        AgentCommand::Spawn {
            name,
            capabilities,
            provider,
            model,
            system_prompt,
            parent,
            json,
        } => {
            let body = json!({
                "name": name,
                "capabilities": capabilities,
                "provider": provider,
                "model": model,
                "system_prompt": system_prompt,
                "parent_id": parent,
            });
            let a = api.post("/api/v1/agents", Some(body)).await?;
            if json {
                output::json(&a);
            } else {
                println!("{}", output::field(&a, "id"));
            }
            return Ok(Exit::Done);
        }
        AgentCommand::Pause { id } => (id, "pause"),
        AgentCommand::Resume { id } => (id, "resume"),
        AgentCommand::Terminate { id } => (id, "terminate"),
    };
    api.post(&format!("/api/v1/agents/{}/{verb}", segment(&id)), None)
        .await?;
    Ok(Exit::Done)
}

fn stream_ended(api: &Api) -> ClientError {
    ClientError::Unreachable {
        url: api.base.clone(),
        reason: "the event stream ended unexpectedly".into(),
    }
}

/// The history after `after` (pages of the REST list), or the live stream with `--follow`.
async fn events(
    api: &Api,
    follow_it: bool,
    after: Option<i64>,
    filter: String,
    json: bool,
) -> Result<Exit, ClientError> {
    let print = |e: &Value| {
        if json {
            output::json(e);
        } else {
            println!("{}", output::event_line(e));
        }
    };
    if follow_it {
        let mut rx = follow::spawn(api, filter, after);
        while let Some(e) = rx.recv().await {
            let e = e?;
            if e["type"] != "stream.ready" {
                print(&e);
            }
        }
        // The follower only stops by reporting an error; ending without one means it died.
        return Err(stream_ended(api));
    }
    let mut cursor = after.unwrap_or(0);
    loop {
        let page = api
            .get(&format!("/api/v1/events?after={cursor}&limit=500{filter}"))
            .await?;
        for e in page["items"].as_array().into_iter().flatten() {
            print(e);
        }
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = next,
            None => return Ok(Exit::Done),
        }
    }
}
