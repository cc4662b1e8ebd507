//! The planner: turns a pending task into a validated DAG of subtasks, or one fallback subtask.

use super::meter::Meter;
use super::{Engine, Outcome};
use crate::llm::{Block, ChatRequest, ChatResponse, Message, Purpose, Role};
use app::db::llm_calls::{self, LlmCall};
use app::db::runs;
use app::domain::agent::CAPABILITIES;
use app::domain::plan::{MAX_NODES, PlanDraft, ValidatedPlan, plan_request_schema, plan_schema};
use app::domain::simulated;
use futures_util::FutureExt;

const PLANNER_SYSTEM: &str = include_str!("../../prompts/planner_system.txt");
const PLANNER_PROMPT: &str = include_str!("../../prompts/planner.txt");
const PLANNER_RETRY: &str = include_str!("../../prompts/planner_retry.txt");

/// The name of the schema (and of the forced tool, on Anthropic) the plan is asked under.
const PLAN_SCHEMA_NAME: &str = "plan";

/// Claims of one run beyond this fall back without asking the model: planning died on it
/// (a panic takes the claim's lease with it, a crash the whole process) that many times.
pub const MAX_PLANNING_ATTEMPTS: i32 = 3;

/// The prompt a real model gets, with the JSON schema `ValidatedPlan::parse` enforces.
fn planner_prompt(description: &str) -> String {
    PLANNER_PROMPT
        .replace("{schema}", &plan_schema(&CAPABILITIES).to_string())
        .replace("{max_nodes}", &MAX_NODES.to_string())
        .replace("{task}", description)
}

/// The plan in an answer: the forced tool call's input (Anthropic), else the text.
fn answer_plan(answer: &ChatResponse) -> Result<ValidatedPlan, String> {
    match answer
        .tool_calls()
        .find(|(_, name, _)| *name == PLAN_SCHEMA_NAME)
    {
        Some((_, _, arguments)) => parse_plan(&arguments.to_string()),
        None => parse_plan(&answer.text()),
    }
}

/// The JSON object inside a model's answer (models like to wrap it in prose or fences).
fn extract_json(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

/// Parses and checks a planner answer; the error says why it was refused.
pub fn parse_plan(text: &str) -> Result<ValidatedPlan, String> {
    let json = extract_json(text).ok_or("the planner answered without a JSON object")?;
    let draft: PlanDraft = serde_json::from_str(json)
        .map_err(|e| format!("the plan does not match the schema: {e}"))?;
    ValidatedPlan::parse(draft, &CAPABILITIES).map_err(|e| format!("the plan was refused: {e}"))
}

/// The single subtask a task falls back to when planning fails.
pub fn fallback_plan(description: &str, priority: i16) -> ValidatedPlan {
    ValidatedPlan::fallback(
        description,
        simulated::capability_for(description),
        priority,
    )
}

impl Engine {
    /// Plans one pending task, if there is one. Whatever the model or the parser does with the
    /// task (an error, a panic), the task gets a plan or a reason; the loop goes on.
    pub async fn plan_once(&self) -> anyhow::Result<Outcome> {
        let claim = {
            let mut conn = self.pool.acquire().await?;
            runs::claim_for_planning(&mut conn, self.config.lease_secs).await?
        };
        let Some(claim) = claim else {
            return Ok(Outcome::Idle);
        };
        if claim.attempt > MAX_PLANNING_ATTEMPTS + 1 {
            // Even the fallback could not be stored that many times.
            let reason = format!(
                "the task could not be planned in {} attempts",
                claim.attempt - 1
            );
            tracing::error!(task = %claim.id, %reason, "giving up on a task");
            let mut tx = self.pool.begin().await?;
            runs::fail_run(&mut tx, claim.id, &reason, 0).await?;
            tx.commit().await?;
            self.work_changed(false);
            return Ok(Outcome::Worked);
        }
        let (proposed, calls) = if claim.attempt > MAX_PLANNING_ATTEMPTS {
            (
                Err(format!(
                    "planning did not finish in {MAX_PLANNING_ATTEMPTS} attempts"
                )),
                Vec::new(),
            )
        } else {
            self.propose(&claim).await
        };
        let (plan, by, note) = match proposed {
            Ok(plan) => (plan, "planner", None),
            Err(reason) => {
                tracing::warn!(task = %claim.id, %reason, "planning failed; one fallback subtask");
                (
                    fallback_plan(&claim.description, claim.priority),
                    "fallback",
                    Some(reason),
                )
            }
        };
        let mut tx = self.pool.begin().await?;
        llm_calls::record(&mut tx, &calls).await?;
        let started = self
            .store_plan(&mut tx, claim.id, &plan, by, note.as_deref())
            .await?;
        tx.commit().await?;
        if let Some(started) = started {
            self.after_commit(started);
        }
        Ok(Outcome::Worked)
    }

    /// Asks the planner model for a plan under its JSON schema and checks it; a refused plan is
    /// asked for once more with the reason. A panic anywhere in the calls or the parsing is this
    /// task's failure, with the panic's message as the reason. Every call made is returned for
    /// the ledger, whatever the outcome.
    async fn propose(
        &self,
        claim: &runs::PlanningClaim,
    ) -> (Result<ValidatedPlan, String>, Vec<LlmCall>) {
        let handle = match self.providers.get(&self.config.planner_provider) {
            Ok(h) => h,
            Err(e) => return (Err(e.to_string()), Vec::new()),
        };
        let mut meter = Meter::new(
            handle,
            &self.config.planner_provider,
            claim.id,
            llm_calls::Purpose::Plan,
        )
        .with_budgets(self.pool.clone());
        let mut req = ChatRequest::new(
            self.config.planner_model.clone(),
            PLANNER_SYSTEM.trim(),
            planner_prompt(&claim.description),
        );
        req.json_schema = Some((PLAN_SCHEMA_NAME.into(), plan_request_schema(&CAPABILITIES)));
        req.max_tokens = 2048;
        req.purpose = Some(Purpose::Plan {
            description: claim.description.clone(),
            priority: claim.priority,
        });
        let attempt = async {
            let answer = meter.chat(&req).await.map_err(|e| e.to_string())?;
            let reason = match answer_plan(&answer) {
                Ok(plan) => return Ok(plan),
                Err(reason) => reason,
            };
            tracing::info!(task = %claim.id, %reason, "plan refused; asking once more");
            req.messages.push(Message {
                role: Role::Assistant,
                content: answer.content.clone(),
            });
            // A forced tool call must be answered with a tool result before the next turn.
            let mut retry = Vec::new();
            for (id, _, _) in answer.tool_calls() {
                retry.push(Block::ToolResult {
                    call_id: id.to_owned(),
                    content: reason.clone(),
                    is_error: true,
                });
            }
            retry.push(Block::Text {
                text: PLANNER_RETRY.trim().replace("{reason}", &reason),
            });
            req.messages.push(Message {
                role: Role::User,
                content: retry,
            });
            let again = meter.chat(&req).await.map_err(|e| e.to_string())?;
            answer_plan(&again).map_err(|second| format!("{second} (asked twice)"))
        };
        let result = match std::panic::AssertUnwindSafe(attempt).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let why = crate::supervisor::panic_message(&*panic);
                tracing::error!(task = %claim.id, panic = %why, "the planner panicked on a task");
                Err(format!("the planner failed on this task: {why}"))
            }
        };
        (result, meter.calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_inside_prose_and_fences() {
        let text = "Here you go:\n```json\n{\"subtasks\": [{\"key\": \"a\", \"description\": \"x\"}]}\n```";
        let plan = parse_plan(text).unwrap();
        assert_eq!(plan.subtasks().len(), 1);
    }

    #[test]
    fn answers_that_break_the_schema_or_the_rules_are_refused_with_a_reason() {
        assert!(
            parse_plan("no json here")
                .unwrap_err()
                .contains("without a JSON object")
        );
        assert!(
            parse_plan("{\"tasks\": []}")
                .unwrap_err()
                .contains("schema")
        );
        let cyclic = r#"{"subtasks": [{"key": "a", "description": "x", "depends_on": ["b"]},
                                       {"key": "b", "description": "y", "depends_on": ["a"]}]}"#;
        assert!(parse_plan(cyclic).unwrap_err().contains("cycle"));
        let repeated = r#"{"subtasks": [{"key": "s1", "description": "x"},
                                         {"key": "s2", "description": "y", "depends_on": ["s1", "s1"]}]}"#;
        assert!(parse_plan(repeated).unwrap_err().contains("twice"));
    }

    proptest::proptest! {
        /// Whatever a model answers — arbitrary Unicode, arbitrary JSON — the parser answers
        /// with a plan or a reason, never a panic.
        #[test]
        fn any_answer_is_a_plan_or_a_reason(
            text in ".{0,200}",
            key in ".{0,8}",
            description in ".{0,40}",
            deps in proptest::collection::vec(".{0,3}", 0..4),
        ) {
            let _ = parse_plan(&text);
            let answer = serde_json::json!({ "subtasks": [
                { "key": key, "description": description, "depends_on": deps },
                { "key": "s1", "description": text, "required_capabilities": [key] },
            ]});
            let _ = parse_plan(&format!("Here it is: {answer} {text}"));
        }
    }
}
